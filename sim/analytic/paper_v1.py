"""The closed-form energy model of Yan, Bai & Wong, arXiv:2409.08290v1.

Energies are per synapse per inference, in pJ, split into named terms. T is the time
window (time steps), s the neuron sparsity (1 - spike rate), so (1 - s)*T is the number of
spikes per neuron per inference. Two architectures have a v1 closed form:
``memory_hierarchy`` (the paper's classical hierarchy) and ``spatial_dataflow``.

E_SNN is affine in s for fixed T: E_SNN(s) = fixed + (1 - s) * per_rate, so the break-even
sparsity s*(T) (E_SNN = E_baseline) and the sparsity giving any target ratio are exact
closed forms. The baseline is the paper's best-case 8-bit ANN, or optionally the QNN of the
later versions (ceil(log2(T + 1))-bit activations), priced in the same v1 terms.

Pure functions over :class:`V1Constants`; nothing here imports the engine or architectures.
Formulas, symbols and assumptions: ``docs/formulas.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from sim.errors import SpecError

BASELINES = ("ann8", "qnn")

#: The v1 abstract's claim (arXiv:2409.08290v1, abstract): 69 % of the ANN's energy at 94.18 %
#: sparsity, T = 6. The v1 model's own numbers (its Table 5) give 0.78 there; `formulas`
#: shows both rather than pick one.
ABSTRACT_CLAIM = {"T": 6, "ratio": 0.69, "sparsity": 0.9418}

#: The paper's reported network spike rate of VGG16 on CIFAR-10 at T = 6 (arXiv:2409.08290,
#: experiments: 7.57 %); the default rate of synthetic traces made to stand in for it.
PAPER_SPIKE_RATE = 0.0757

# Which energy-table fields feed which symbol of the paper's model.
_ENTRY_FOR = {"e_add": "add", "e_mul": "mul", "e_mem": "onchip_access", "e_dram": "dram_access"}
_CONSTANT_FOR = {"rho": "rho", "R": "R", "N": "N", "c_syn": "c_syn_pj"}


@dataclass(frozen=True)
class V1Constants:
    """The symbols of the v1 model. Energies in pJ per action for ``datapath_bits``-bit
    operands; rho (ANN non-zero fraction), R (weight reuse), N (fan-in) dimensionless;
    c_syn in pJ per spike-synapse event (classical hierarchy)."""

    e_add: float
    e_mul: float
    e_mem: float
    e_dram: float
    rho: float
    R: float
    N: float
    c_syn: float
    datapath_bits: int = 8

    def __post_init__(self) -> None:
        for name in ("e_add", "e_mul", "e_mem", "e_dram", "c_syn"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 pJ")
        if not 0 < self.rho <= 1:
            raise ValueError(f"rho must be in (0, 1], got {self.rho}")
        if self.R <= 0 or self.N <= 0 or self.datapath_bits < 1:
            raise ValueError("R, N and datapath_bits must be positive")

    @classmethod
    def from_table(cls, table) -> "V1Constants":
        """Read the v1 symbols from an :class:`sim.arch.energy.EnergyTable`; SpecError names
        the missing or out-of-range field."""
        values: dict[str, float] = {}
        for symbol, entry in _ENTRY_FOR.items():
            if entry not in table.entries:
                raise SpecError(table.path, f"entries.{entry}", "the paper's v1 model needs this entry")
            values[symbol] = table.entries[entry].energy_pj
        for symbol, key in _CONSTANT_FOR.items():
            if key not in table.paper_model:
                raise SpecError(table.path, f"paper_model.{key}", "the paper's v1 model needs this constant")
            values[symbol] = table.paper_model[key].value
        widths = {table.entries[e].bits for e in ("add", "mul", "onchip_access")}
        if len(widths) != 1:
            raise SpecError(table.path, "entries.onchip_access.bits",
                            "the v1 model assumes one datapath width for add, mul and onchip_access")
        for symbol, ok, expected in (("rho", 0 < values["rho"] <= 1, "in (0, 1]"),
                                     ("R", values["R"] > 0, "> 0"), ("N", values["N"] > 0, "> 0"),
                                     ("c_syn", values["c_syn"] >= 0, ">= 0 pJ")):
            if not ok:
                raise SpecError(table.path, f"paper_model.{_CONSTANT_FOR[symbol]}.value",
                                f"must be {expected}, got {values[symbol]}")
        return cls(**values, datapath_bits=widths.pop())


@dataclass(frozen=True)
class EnergyTerms:
    """Energy per synapse per inference (pJ), by named term.

    arithmetic: multiplies and adds of the synaptic operation; onchip: on-chip memory accesses
    and operand movement; dram: off-chip accesses; synaptic_event: the classical hierarchy's
    lumped c_syn per spike-synapse event (its split is unpublished); membrane: per-neuron
    membrane updates amortised over the fan-in N; fire: per-spike neuron work over N.
    """

    arithmetic: float = 0.0
    onchip: float = 0.0
    dram: float = 0.0
    synaptic_event: float = 0.0
    membrane: float = 0.0
    fire: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all terms, pJ per synapse per inference."""
        return (self.arithmetic + self.onchip + self.dram + self.synaptic_event
                + self.membrane + self.fire)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def _check_T(T: int) -> None:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")


def _check_s(s: float) -> None:
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"sparsity s must be in [0, 1], got {s!r}")


def qnn_bits(T: int) -> int:
    """Activation bits of the QNN equivalent to a T-step rate-coded SNN: ceil(log2(T + 1)),
    the number of bits that hold a spike count 0..T."""
    _check_T(T)
    return T.bit_length()


# --- memory_hierarchy (the paper's classical hierarchy) ---------------------------------

def _mh_ann(c: V1Constants, act_scale: float = 1.0, rho: float | None = None) -> EnergyTerms:
    # rho*(4*e_mem + e_mul + e_add) + (e_DRAM + e_mem)/R. The four accesses per MAC are read as
    # weight, input activation, partial-sum read and write; act_scale shrinks the one
    # activation access and the multiply for narrower (QNN) activations.
    rho = c.rho if rho is None else rho
    return EnergyTerms(
        arithmetic=rho * (c.e_mul * act_scale + c.e_add),
        onchip=rho * (3 + act_scale) * c.e_mem + c.e_mem / c.R,
        dram=c.e_dram / c.R,
    )


def _mh_snn(c: V1Constants, s: float, T: int) -> EnergyTerms:
    # (1-s)T(c_syn + e_add/N) + T(c_syn + e_add)/N + 2(e_DRAM + e_mem)/R * T/(T+1)
    spikes = (1.0 - s) * T
    weights = 2.0 / c.R * T / (T + 1)
    return EnergyTerms(
        synaptic_event=spikes * c.c_syn,
        fire=spikes * c.e_add / c.N,
        membrane=T * (c.c_syn + c.e_add) / c.N,
        dram=weights * c.e_dram,
        onchip=weights * c.e_mem,
    )


# --- spatial_dataflow (the paper's proposal) --------------------------------------------

def _sd_ann(c: V1Constants, act_scale: float = 1.0, rho: float | None = None) -> EnergyTerms:
    # rho*(e_mem + e_mul + e_add): weights resident, one activation movement per MAC.
    rho = c.rho if rho is None else rho
    return EnergyTerms(
        arithmetic=rho * (c.e_mul * act_scale + c.e_add),
        onchip=rho * c.e_mem * act_scale,
    )


def _sd_snn(c: V1Constants, s: float, T: int) -> EnergyTerms:
    # (1-s)T(e_mem + e_add) + 2T(e_mem + e_add)/N: one movement and one add per spike-synapse
    # event; membrane read and write per neuron per step, amortised over N.
    spikes = (1.0 - s) * T
    return EnergyTerms(
        onchip=spikes * c.e_mem,
        arithmetic=spikes * c.e_add,
        membrane=2.0 * T * (c.e_mem + c.e_add) / c.N,
    )


_ANN: dict[str, Callable[..., EnergyTerms]] = {"memory_hierarchy": _mh_ann, "spatial_dataflow": _sd_ann}
_SNN: dict[str, Callable[..., EnergyTerms]] = {"memory_hierarchy": _mh_snn, "spatial_dataflow": _sd_snn}
#: The architectures the paper's v1 model has equations for (the paper's two).
ARCHITECTURES = tuple(_ANN)


def _arch(arch: str) -> str:
    if arch not in ARCHITECTURES:
        raise ValueError(f"no v1 closed form for architecture {arch!r} (have {', '.join(ARCHITECTURES)})")
    return arch


def ann_energy(arch: str, c: V1Constants) -> EnergyTerms:
    """E_ANN of the paper's best-case 8-bit ANN (skips zero activations), pJ per synapse."""
    return _ANN[_arch(arch)](c)


def qnn_energy(arch: str, c: V1Constants, T: int, rho: float | None = None) -> EnergyTerms:
    """E_QNN, pJ per synapse: the v1 ANN with ceil(log2(T+1))-bit activations. Activation
    accesses and the multiply scale by bits/datapath_bits (energy proportional to operand
    bits); weight, partial-sum and DRAM terms and the add stay at the datapath width. ``rho``
    is the QNN's non-zero fraction (default: the table's rho)."""
    if rho is not None and not 0 < rho <= 1:
        raise ValueError(f"QNN rho must be in (0, 1], got {rho}")
    return _ANN[_arch(arch)](c, act_scale=qnn_bits(T) / c.datapath_bits, rho=rho)


def snn_energy(arch: str, c: V1Constants, s: float, T: int) -> EnergyTerms:
    """E_SNN at sparsity s over T time steps, pJ per synapse per inference."""
    _check_s(s)
    _check_T(T)
    return _SNN[_arch(arch)](c, s, T)


def baseline_energy(arch: str, c: V1Constants, T: int, baseline: str = "ann8",
                    qnn_rho: float | None = None) -> EnergyTerms:
    """The baseline the SNN is compared with: ``ann8`` (v1) or ``qnn`` (v2+ style)."""
    if baseline == "ann8":
        return ann_energy(arch, c)
    if baseline == "qnn":
        return qnn_energy(arch, c, T, qnn_rho)
    raise ValueError(f"unknown baseline {baseline!r} (have {', '.join(BASELINES)})")


def snn_affine(arch: str, c: V1Constants, T: int) -> tuple[float, float]:
    """(fixed, per_rate) in pJ with E_SNN(s) = fixed + (1 - s) * per_rate: the cost at s = 1
    (no spikes) and the slope in the spike rate 1 - s."""
    fixed = snn_energy(arch, c, 1.0, T).total
    return fixed, snn_energy(arch, c, 0.0, T).total - fixed


def ratio(arch: str, c: V1Constants, s: float, T: int, baseline: str = "ann8",
          qnn_rho: float | None = None) -> float:
    """E_SNN / E_baseline at sparsity s and time window T (dimensionless)."""
    return snn_energy(arch, c, s, T).total / baseline_energy(arch, c, T, baseline, qnn_rho).total


def sparsity_for_ratio(arch: str, c: V1Constants, T: int, target: float, baseline: str = "ann8",
                       qnn_rho: float | None = None) -> float:
    """The sparsity s at which E_SNN / E_baseline equals ``target``, in closed form. May lie
    outside [0, 1]: > 1 means no sparsity reaches the target, < 0 that every sparsity does."""
    if not target > 0:
        raise ValueError(f"target ratio must be > 0, got {target}")
    fixed, per_rate = snn_affine(arch, c, T)
    return 1.0 - (target * baseline_energy(arch, c, T, baseline, qnn_rho).total - fixed) / per_rate


@dataclass(frozen=True)
class BreakEven:
    """Break-even sparsity s* at time window T: the SNN is cheaper when s > s*.
    ``attainable`` is False when s* > 1 (even a silent SNN costs more than the baseline)."""

    T: int
    s_star: float
    attainable: bool
    e_baseline_pj: float
    snn_fixed_pj: float
    snn_per_rate_pj: float


def break_even(arch: str, c: V1Constants, T: int, baseline: str = "ann8",
               qnn_rho: float | None = None) -> BreakEven:
    """s*(T) = 1 - (E_baseline - fixed) / per_rate, the exact root of E_SNN(s) = E_baseline."""
    fixed, per_rate = snn_affine(arch, c, T)
    e_base = baseline_energy(arch, c, T, baseline, qnn_rho).total
    s_star = 1.0 - (e_base - fixed) / per_rate
    return BreakEven(T, s_star, s_star <= 1.0, e_base, fixed, per_rate)

