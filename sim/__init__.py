"""snn-energy-sim: trace-driven energy simulator for SNNs and their ANN twins.

Implements the analysis of Yan, Bai and Wong, "Reconsidering the energy efficiency of
spiking neural networks" (arXiv:2409.08290). Importing ``sim`` never imports torch.
"""

__version__ = "0.1.0"
