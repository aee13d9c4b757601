"""Integrate-and-fire neurons: no leak, reset by subtraction of 1, threshold theta (just below 1).

Two implementations of the same dynamics:

- :class:`IFNeuron`, a stateful float module for arbitrary per-step drive (and the adapters);
- the fixed-point form used by the converter (:func:`if_spikes_fixed`, :func:`qt_level_fixed`):
  the constant drive z is rounded once to a multiple of 2^-24 of the threshold unit and the
  membrane is an int64 count of those units, so every comparison with the threshold is exact.

Why the identity "spikes over T == T x Q_T(z)" holds: under a constant drive 0 <= z <= 1 the
membrane before firing at step t is t*z - n(t-1), and by induction n(t) = #{k >= 0 : k + theta
<= t*z}; hence n(T) = clamp(floor(T*z + 1 - theta), 0, T), which is T x the twin's Q_T level at
threshold theta (:func:`sim.record.quant.qt_level`). Drive above 1 fires at every step (n = T),
drive at or below 0 never fires (n = 0). In float arithmetic the comparison t*z - n >= theta
can round the wrong way when T*z lies within rounding error of k + theta; in fixed point it
cannot, so the converter's identity is exact for every drive (z is clipped to [-1, 1], which
changes no spike).
"""

from __future__ import annotations

import torch
from torch import nn

from sim.record.quant import THRESHOLD

FRAC_BITS = 24
ONE = 1 << FRAC_BITS
#: Clipping the drive to [-1, 1] changes no spike (<= 0 never fires, >= 1 fires at every step)
#: and keeps the membrane and T * drive inside int32 for T <= 127.
DRIVE_CLIP = 1.0


def fixed_dtype(T: int) -> torch.dtype:
    """int32 while T * ONE fits (T <= 127), else int64."""
    return torch.int32 if T * ONE < 2 ** 31 else torch.int64


class IFNeuron(nn.Module):
    """Float IF neuron with state across calls: v += x; spike where v >= theta; v -= spike.

    Call :meth:`reset` before each new input sample. Returns spikes as 0/1 floats.
    """

    def __init__(self, threshold: float = THRESHOLD):
        super().__init__()
        self.threshold = float(threshold)
        self.v: torch.Tensor | None = None

    def reset(self) -> None:
        self.v = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.v = x.clone() if self.v is None else self.v + x
        s = (self.v >= self.threshold).to(x.dtype)
        self.v = self.v - s
        return s

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, reset=subtract, leak=0"


def if_response(drive: torch.Tensor, T: int, threshold: float = THRESHOLD) -> torch.Tensor:
    """Spikes bool [T, *drive.shape] of float IF neurons under the constant ``drive``."""
    neuron = IFNeuron(threshold)
    return torch.stack([neuron(drive) for _ in range(T)]).bool()


def to_fixed(z: torch.Tensor, T: int = 6) -> torch.Tensor:
    """Drive (float) -> integer multiples of 2^-24 (round half to even), clipped to +-DRIVE_CLIP."""
    z = z.double().clamp(-DRIVE_CLIP, DRIVE_CLIP)   # a fresh tensor: the in-place ops below are safe
    return z.mul_(ONE).round_().to(fixed_dtype(T))


def fixed_threshold(theta: float) -> int:
    th = round(theta * ONE)
    if not 0 < th <= ONE:
        raise ValueError(f"threshold must be in (0, 1], got {theta}")
    return th


def if_spikes_fixed(z_fix: torch.Tensor, T: int, theta: float = THRESHOLD) -> torch.Tensor:
    """Spikes bool [T, *shape] of IF neurons under the constant fixed-point drive ``z_fix``.

    The membrane v (in units of 2^-24) integrates the drive each step, fires where
    v >= theta and then loses one unit of threshold (ONE): the IF dynamics, step by step.
    """
    th = fixed_threshold(theta)
    v = torch.zeros_like(z_fix)
    out = torch.empty((T, *z_fix.shape), dtype=torch.bool)
    for t in range(T):
        v.add_(z_fix)
        torch.ge(v, th, out=out[t])
        v.sub_(out[t].view(torch.uint8), alpha=ONE)   # reset by subtraction (measured fastest form)
    return out


def to_fixed_steps(z: torch.Tensor) -> torch.Tensor:
    """Per-step drive (float) -> int64 multiples of 2^-24 (round half to even), not clipped.

    A drive that varies over time cannot be clipped without changing spikes (a step above 1
    leaves charge for later steps), so the membrane runs in int64 (|drive| < 2^39 is exact)."""
    return z.double().mul(ONE).round_().to(torch.int64)


def if_spikes_steps(z_fix: torch.Tensor, theta: float = THRESHOLD) -> torch.Tensor:
    """Spikes bool [T, *shape] of IF neurons under a per-step fixed-point drive ``z_fix`` [T, *shape].

    The same membrane as :func:`if_spikes_fixed` (integrate, fire at v >= theta, subtract one
    unit of threshold), but step t integrates z_fix[t]: the causal dynamics."""
    th = fixed_threshold(theta)
    v = torch.zeros_like(z_fix[0])
    out = torch.empty(z_fix.shape, dtype=torch.bool)
    for t in range(z_fix.shape[0]):
        v.add_(z_fix[t])
        torch.ge(v, th, out=out[t])
        v.sub_(out[t].view(torch.uint8), alpha=ONE)
    return out


def qt_level_fixed(z_fix: torch.Tensor, T: int, theta: float = THRESHOLD) -> torch.Tensor:
    """The twin's Q_T level (uint8 0..T) of a fixed-point drive: clamp(floor(T z - theta) + 1, 0, T)."""
    th = fixed_threshold(theta)
    level = torch.div(T * z_fix - th, ONE, rounding_mode="floor") + 1
    return level.clamp(0, T).to(torch.uint8 if T <= 255 else torch.int32)
