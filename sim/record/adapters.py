"""Adapters for IF neurons of snnTorch and spikingjelly (optional; neither is a dependency).

- :func:`neuron_model` reads a snnTorch ``Leaky`` or a spikingjelly ``IFNode``/``LIFNode`` and
  returns the trace's :class:`~sim.trace.schema.NeuronModel` (for a trace's metadata).
- :func:`make_if_neuron` builds the paper's IF neuron (no leak, soft reset) in one of those
  frameworks, and :func:`foreign_if_response` drives such a neuron with a constant current
  for T steps, so its spikes can be compared with :mod:`sim.record.neurons`.

Both frameworks reset by subtracting the *threshold*; the converter's neuron subtracts 1.
snnTorch fires on mem > threshold (strict), spikingjelly and the converter on v >= threshold:
where the membrane lands exactly on the threshold the two disagree by that one spike.
With threshold 1 the two are the same neuron; with theta = 0.9999 theirs fires
min(T, floor(T*z/theta)) times under a constant drive z instead of min(T, floor(T*z + 1 - theta)),
which differs only where T*z lies within about 1e-4 * T below an integer.
"""

from __future__ import annotations

import torch

from sim.errors import ParameterError
from sim.trace.schema import NeuronModel

FRAMEWORKS = ("snntorch", "spikingjelly")


def _missing(framework: str) -> ParameterError:
    return ParameterError(None, "framework", f"{framework} is not installed (optional: pip install {framework})")


def _spikingjelly_neuron_module():
    try:
        from spikingjelly.activation_based import neuron  # spikingjelly >= 0.0.0.0.14
    except ImportError:
        try:
            from spikingjelly.clock_driven import neuron  # older releases
        except ImportError:
            raise _missing("spikingjelly") from None
    return neuron


def make_if_neuron(framework: str, threshold: float = NeuronModel.threshold):
    """An IF neuron (no leak, reset by subtraction) of ``framework``, ready for single steps."""
    if framework == "snntorch":
        try:
            import snntorch as snn
        except ImportError:
            raise _missing("snntorch") from None
        return snn.Leaky(beta=1.0, threshold=threshold, reset_mechanism="subtract")
    if framework == "spikingjelly":
        return _spikingjelly_neuron_module().IFNode(v_threshold=threshold, v_reset=None)
    raise ParameterError(None, "framework", f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")


def neuron_model(module) -> NeuronModel:
    """The trace's description of a snnTorch/spikingjelly neuron (IF or LIF, soft or hard reset;
    :func:`sim.record.frameworks.neuron_model`, where the leak is the factor kept per step)."""
    from sim.record.frameworks import is_neuron, neuron_model as framework_neuron_model

    if not is_neuron(module):
        raise ParameterError(None, "neuron", f"unsupported neuron module {type(module).__module__}.{type(module).__name__}")
    return framework_neuron_model(module, type(module).__name__)


@torch.no_grad()
def foreign_if_response(module, drive: torch.Tensor, T: int) -> torch.Tensor:
    """Spikes bool [T, *drive.shape] of a snnTorch/spikingjelly neuron under a constant drive."""
    mod = type(module).__module__
    out = []
    if mod.startswith("snntorch"):
        mem = torch.zeros_like(drive)
        for _ in range(T):
            spk, mem = module(drive, mem)
            out.append(spk.bool())
    elif mod.startswith("spikingjelly"):
        module.reset()
        for _ in range(T):
            out.append(module(drive).bool())
        module.reset()
    else:
        raise ParameterError(None, "neuron", f"unsupported neuron module {mod}.{type(module).__name__}")
    return torch.stack(out)
