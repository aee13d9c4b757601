"""The action-count ledger: exact integer counts keyed by (layer, component, action).

Each key also carries the bits one action moves or operates on (a weight read is
``weight_bits``), so totals in bits and pricing need nothing but the ledger.
"""

from __future__ import annotations

from collections import defaultdict


class Ledger:
    """Exact counts per (layer, component, action)."""

    def __init__(self):
        self.counts: dict[tuple[str, str, str], int] = defaultdict(int)
        self.bits: dict[tuple[str, str, str], int] = {}

    def add(self, layer: str, component: str, action: str, count, bits: int) -> None:
        """Record ``count`` actions of ``bits`` bits each. Zero counts are recorded too, so a
        report lists every action an architecture can perform."""
        count = int(count)
        if count < 0:
            raise ValueError(f"negative count for {layer}/{component}.{action}: {count}")
        key = (layer, component, action)
        old = self.bits.setdefault(key, int(bits))
        if old != int(bits):
            raise ValueError(f"{layer}/{component}.{action}: width changed from {old} to {bits} bits")
        self.counts[key] += count

    def layers(self) -> list[str]:
        seen: dict[str, None] = {}
        for layer, _, _ in self.counts:
            seen.setdefault(layer, None)
        return list(seen)

    def layer_counts(self, layer: str) -> dict[str, int]:
        """``{"component.action": count}`` for one layer."""
        return {f"{c}.{a}": n for (l, c, a), n in self.counts.items() if l == layer}

    def layer_bits(self, layer: str) -> dict[str, int]:
        return {f"{c}.{a}": self.bits[(l, c, a)] for (l, c, a) in self.counts if l == layer}

    def totals(self) -> dict[str, int]:
        """``{"component.action": count}`` summed over layers."""
        out: dict[str, int] = defaultdict(int)
        for (_, c, a), n in self.counts.items():
            out[f"{c}.{a}"] += n
        return dict(out)
