"""How events are encoded on the hardware, shared by the simulators and the closed forms."""

from __future__ import annotations


def address_bits(n: int) -> int:
    """Bits of an address that names one of ``n`` things (a neuron, a router coordinate):
    ⌈log2 n⌉, at least 1."""
    return max(1, (n - 1).bit_length())
