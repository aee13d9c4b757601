"""Discrete-event core: the action-count ledger and simpy components (DRAM, SRAM, PE array).

The engine knows nothing of architectures or energy prices: an architecture drives it with
transactions (a tile transfer, a tile of compute) and records exact counts in the ledger.
"""

from sim.engine.components import Dram, PEArray, Sram, TilePipeline
from sim.engine.ledger import Ledger

__all__ = ["Dram", "Ledger", "PEArray", "Sram", "TilePipeline"]
