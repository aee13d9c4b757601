"""What a per-architecture closed form returns, and how it is priced.

A prediction holds, per layer, every ``component.action`` count the simulator's report
lists, each written as a sum of named terms. A term whose cause is in ``NONIDEAL_CAUSES``
vanishes under the ideal assumptions (everything resident, no spill); the others are the
ideal closed form. So ``counts = ideal counts + non-ideal terms`` exactly, and a residual
between a simulation and the ideal closed form is attributed to those named causes.

Pricing reuses :func:`sim.report.pricing.price` (the simulator's own rule, which imports only
``sim.arch``), so a predicted count prices exactly like a counted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sim.arch.registry import CAUSES, MODES
from sim.errors import ParameterError
from sim.report.pricing import price
from sim.report.totals import HARDWARE_TOTALS, WORKLOAD_TOTALS, hardware_totals

#: Causes of terms that are zero when every layer's weights, membranes and events fit: the
#: causes every architecture's registry row names (sim.arch.registry), with their texts.
NONIDEAL_CAUSES = frozenset(CAUSES)


def checked_layers(spec, architecture: str, mode: str, layers, stats) -> list:
    """The compute layers of ``layers``, after checking that ``spec`` drives ``architecture``,
    ``mode`` is known and ``stats`` lists the compute layers in execution order."""
    from sim.analytic.layer_stats import compute_layers

    if spec.architecture != architecture:
        raise ParameterError(spec.path, "architecture", f"expected {architecture}, got {spec.architecture}")
    if mode not in MODES:
        raise ParameterError(None, "--mode", f"unknown mode {mode!r}")
    layers = compute_layers(layers)
    if [l.name for l in layers] != [s.name for s in stats]:
        raise ValueError("stats must list the compute layers in execution order")
    return layers


class TermLedger:
    """Counts of one layer built term by term: ``add(key, bits, cause=value, ...)``."""

    def __init__(self) -> None:
        self.terms: dict[str, dict[str, int | float]] = {}
        self.bits: dict[str, int] = {}

    def add(self, key: str, bits: int, **causes: int | float) -> None:
        if key in self.bits and self.bits[key] != bits:
            raise ValueError(f"{key}: width changed from {self.bits[key]} to {bits} bits")
        self.bits[key] = int(bits)
        entry = self.terms.setdefault(key, {})
        for cause, value in causes.items():
            entry[cause] = entry.get(cause, 0) + value


@dataclass
class LayerPrediction:
    """Predicted counts of one layer, their terms, their widths and their energy.

    counts: ``{"component.action": count}`` (all terms); ideal_counts: without the
    non-ideal terms; terms: ``{"component.action": {cause: count}}``; bits: bits per
    action; energy_pj / ideal_energy_pj: priced with the energy table (pJ); totals: the
    report's canonical totals (workload counts and bits moved per memory level)."""

    name: str
    counts: dict[str, int | float]
    ideal_counts: dict[str, int | float]
    terms: dict[str, dict[str, int | float]]
    bits: dict[str, int]
    totals: dict[str, int | float]
    energy_pj: float = 0.0
    ideal_energy_pj: float = 0.0
    energy_by_action_pj: dict[str, float] = field(default_factory=dict)
    residency: dict = field(default_factory=dict)

    def nonideal_terms(self) -> dict[str, dict[str, int | float]]:
        """``{"component.action": {cause: count}}`` of the non-zero non-ideal terms."""
        out = {}
        for key, causes in self.terms.items():
            extra = {c: v for c, v in causes.items() if c in NONIDEAL_CAUSES and v}
            if extra:
                out[key] = extra
        return out

    def as_dict(self) -> dict:
        return {"name": self.name, "energy_pj": self.energy_pj, "ideal_energy_pj": self.ideal_energy_pj,
                "counts": self.counts, "ideal_counts": self.ideal_counts, "bits": self.bits,
                "totals": self.totals, "terms": self.terms, "nonideal_terms": self.nonideal_terms(),
                "energy_by_action_pj": self.energy_by_action_pj, "residency": self.residency}


@dataclass
class Prediction:
    """A closed form's prediction for one (architecture, mode) over a set of samples."""

    architecture: str
    mode: str
    samples: int
    T: int
    ann_activation_bits: int
    layers: list[LayerPrediction]
    energy_table: str | None = None

    @property
    def energy_pj(self) -> float:
        return sum(l.energy_pj for l in self.layers)

    @property
    def ideal_energy_pj(self) -> float:
        return sum(l.ideal_energy_pj for l in self.layers)

    def counts(self) -> dict[str, int | float]:
        """``{"component.action": count}`` summed over layers, like the report's ``counts``."""
        out: dict[str, int | float] = {}
        for l in self.layers:
            for k, v in l.counts.items():
                out[k] = out.get(k, 0) + v
        return out

    def totals(self) -> dict[str, int | float]:
        out = dict.fromkeys(WORKLOAD_TOTALS + HARDWARE_TOTALS, 0)
        for l in self.layers:
            for k in out:
                out[k] += l.totals[k]
        return out

    def as_dict(self) -> dict:
        return {"architecture": self.architecture, "mode": self.mode, "samples": self.samples,
                "T": self.T, "ann_activation_bits": self.ann_activation_bits,
                "energy_table": self.energy_table, "energy_pj": self.energy_pj,
                "ideal_energy_pj": self.ideal_energy_pj, "counts": self.counts(),
                "totals": self.totals(), "layers": [l.as_dict() for l in self.layers]}


def finish_layer(name: str, led: TermLedger, workload: dict, spec, table, residency: dict) -> LayerPrediction:
    """Sum a layer's terms into counts (all, and ideal only), add totals, price with ``table``
    (None: no energies)."""
    counts = {k: sum(c.values()) for k, c in led.terms.items()}
    ideal = {k: sum(v for cause, v in c.items() if cause not in NONIDEAL_CAUSES)
             for k, c in led.terms.items()}
    classes = {n: c.cls for n, c in spec.components.items()}
    totals = dict.fromkeys(WORKLOAD_TOTALS, 0)
    totals.update(workload)
    totals.update(hardware_totals(counts, led.bits, classes))
    pred = LayerPrediction(name, counts, ideal, led.terms, dict(led.bits), totals, residency=residency)
    if table is not None:
        comps = {n: {"class": c.cls, "capacity_bytes": c.capacity_bytes} for n, c in spec.components.items()}
        pred.energy_by_action_pj = price(counts, led.bits, comps, table)
        pred.energy_pj = sum(pred.energy_by_action_pj.values())
        pred.ideal_energy_pj = sum(price(ideal, led.bits, comps, table).values())
    return pred


class ClosedForm(Protocol):
    """What a per-architecture closed-form module provides (the module a registry row names).

    ``predict`` returns every count of a replay of ``mode`` from layer geometry, T, the spec
    and per-layer statistics, as named terms; ``ideal_overrides`` returns the ``--set``
    overrides that make ``spec`` meet the closed form's ideal assumptions for ``layers``
    (nothing already large enough is shrunk); ``spike_input``: the trace's input is stored
    spikes (rate or event encoding) rather than an analog image."""

    ARCHITECTURE: str

    def predict(self, spec, layers, stats, T: int, mode: str, trace_act_bits: int, table=None,
                ideal: bool = False) -> Prediction: ...

    def ideal_overrides(self, spec, layers, T: int, trace_bits: int, spike_input: bool = False) -> list[str]: ...
