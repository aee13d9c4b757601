"""How ``record-model`` reads the spiking neurons of each framework (issue 15, item 2).

A neuron *adapter* answers four questions about a neuron module: is this one of yours, which
trace neuron model (IF/LIF, threshold, reset, leak factor) does it run, how is its state
cleared, and which part of its output is the spike tensor. Supported:

- plain PyTorch: any module whose class sets ``is_spiking_neuron = True`` and has
  ``threshold``, ``leak`` (factor kept per step; 1.0 or absent: IF) and ``reset``/``reset_mode``
  (``"subtract"`` or ``"zero"``);
- snnTorch ``Leaky`` (``beta`` = the leak factor, ``beta == 1``: IF; ``reset_mechanism``
  ``subtract``/``zero``/``none``; ``reset_delay`` either way; ``init_hidden`` either way; with
  ``output=True`` or ``init_hidden=False`` it returns ``(spk, mem)`` and the spikes are ``[0]``);
- spikingjelly ``activation_based`` ``IFNode``, ``LIFNode`` (leak factor 1 - 1/tau) and
  ``ParametricLIFNode`` (1 - sigmoid(w)); ``v_reset=None`` is reset by subtraction,
  ``v_reset=0`` reset to zero; single-step and multi-step modes.

Neither framework is imported here: a module is recognised by its class's module path, so
``sim`` runs without them and a model from one framework never needs the other installed.
"""

from __future__ import annotations

import math

import numpy as np

from sim.errors import ParameterError
from sim.trace.schema import NeuronModel


class UnsupportedModelError(ParameterError):
    """The model holds a module, function or arrangement the trace format cannot express."""


def _framework(module) -> str | None:
    path = type(module).__module__
    if getattr(type(module), "is_spiking_neuron", False):
        return "plain"
    if path.startswith("snntorch") and type(module).__name__ == "Leaky":
        return "snntorch"
    if path.startswith("spikingjelly") and type(module).__name__ in ("IFNode", "LIFNode", "ParametricLIFNode"):
        return "spikingjelly"
    return None


def is_neuron(module) -> bool:
    """A spiking neuron module record-model can read (plain protocol, snnTorch, spikingjelly)."""
    return _framework(module) is not None


def looks_like_neuron(module) -> bool:
    """A module of a spiking framework's neuron zoo that is not supported (for a clear refusal)."""
    path = type(module).__module__
    return path.startswith("snntorch._neurons") or path.startswith("spikingjelly.activation_based.neuron")


def _scalar(value, what: str, where: str, source) -> float:
    """One float of a scalar or a tensor holding a single distinct value."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        import torch
        t = (value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)).double().flatten()
    except Exception:   # not a number at all
        raise UnsupportedModelError(source, where, f"neuron {what} must be a number, got {value!r}") from None
    if isinstance(value, torch.Tensor) and value.dtype == torch.float32:
        # a float32 parameter stands for the shortest decimal that rounds to it (beta=0.9, not 0.8999999762)
        t = torch.tensor([float(str(np.float32(v))) for v in t.tolist()], dtype=torch.float64)
    if t.numel() == 0 or not bool((t == t[0]).all()):
        raise UnsupportedModelError(source, where, f"neuron {what} must be one value for the whole layer "
                                    f"(per-neuron {what} is not supported)")
    return float(t[0])


def _model(kind_leak: float, threshold: float, reset: str, where: str, source) -> NeuronModel:
    if not (math.isfinite(threshold) and threshold > 0):
        raise UnsupportedModelError(source, where, f"neuron threshold must be a finite float > 0, got {threshold}")
    if not 0 < kind_leak <= 1:
        raise UnsupportedModelError(source, where, f"neuron leak factor must be in (0, 1], got {kind_leak}")
    if kind_leak == 1.0:
        return NeuronModel(type="IF", threshold=threshold, reset=reset, leak=0.0)
    return NeuronModel(type="LIF", threshold=threshold, reset=reset, leak=kind_leak)


def neuron_model(module, where: str, source=None) -> NeuronModel:
    """The trace's neuron model of a supported neuron module (UnsupportedModelError otherwise)."""
    fw = _framework(module)
    if fw == "plain":
        rule = getattr(module, "reset_mode", getattr(module, "reset", None))
        if rule not in ("subtract", "zero"):
            raise UnsupportedModelError(source, where, f"neuron reset must be 'subtract' or 'zero', got {rule!r}")
        leak = getattr(module, "leak", None)
        return _model(1.0 if leak is None else _scalar(leak, "leak", where, source),
                      _scalar(getattr(module, "threshold", float("nan")), "threshold", where, source), rule, where, source)
    if fw == "snntorch":
        if getattr(module, "inhibition", False) or getattr(module, "state_quant", False):
            raise UnsupportedModelError(source, where, "snnTorch Leaky with inhibition or state_quant is not supported")
        beta = min(max(_scalar(module.beta, "beta", where, source), 0.0), 1.0)   # snnTorch clamps beta to [0, 1]
        reset = str(getattr(module, "reset_mechanism", "subtract"))
        if reset not in ("subtract", "zero", "none"):
            raise UnsupportedModelError(source, where, f"unknown snnTorch reset_mechanism {reset!r}")
        return _model(beta, _scalar(module.threshold, "threshold", where, source), reset, where, source)
    if fw == "spikingjelly":
        v_reset = module.v_reset
        if v_reset is None:
            reset = "subtract"
        elif float(v_reset) == 0.0:
            reset = "zero"
        else:
            raise UnsupportedModelError(source, where, f"spikingjelly v_reset must be None (soft reset) or 0.0, got {v_reset}")
        name = type(module).__name__
        if name == "IFNode":
            leak = 1.0
        elif name == "LIFNode":
            leak = 1.0 - 1.0 / float(module.tau)
        else:   # ParametricLIFNode: 1/tau = sigmoid(w)
            import torch
            leak = 1.0 - float(torch.sigmoid(module.w.detach().double()).flatten()[0])
        return _model(leak, _scalar(module.v_threshold, "v_threshold", where, source), reset, where, source)
    raise UnsupportedModelError(source, where, f"{type(module).__module__}.{type(module).__name__} is not a supported neuron")


def describe(module) -> str:
    """A short description of how the neuron integrates (for the trace's description)."""
    fw = _framework(module)
    if fw == "snntorch":
        return (f"snnTorch Leaky(reset_mechanism={module.reset_mechanism}, reset_delay={module.reset_delay}): "
                "mem <- beta*mem + I - reset, spike = mem > threshold")
    if fw == "spikingjelly":
        extra = f", decay_input={module.decay_input}" if hasattr(module, "decay_input") else ""
        return f"spikingjelly {type(module).__name__}(v_reset={module.v_reset}{extra}): spike = v >= v_threshold"
    return f"{type(module).__name__} (is_spiking_neuron protocol)"


def reset_neuron(module) -> None:
    """Clear one neuron module's state."""
    fw = _framework(module)
    if fw == "snntorch":
        module.reset_mem()
    elif fw == "spikingjelly":
        module.reset()
    else:
        fn = getattr(module, "reset_state", None) or getattr(module, "reset", None)
        if callable(fn):
            fn()


def spikes_of(output):
    """The spike tensor of a neuron's output (snnTorch's ``(spk, mem)`` tuples: ``[0]``)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def step_mode_modules(model) -> list:
    """The modules of a spikingjelly model that have a step mode ('s' or 'm')."""
    return [m for m in model.modules() if isinstance(getattr(m, "step_mode", None), str)
            and type(m).__module__.startswith("spikingjelly")]


def multi_step(model, source=None) -> bool:
    """True when the model's spikingjelly modules run multi-step (model(x_seq), x_seq [T, B, ...]);
    a model that mixes the two modes is refused."""
    modes = {m.step_mode for m in step_mode_modules(model)}
    if len(modes) > 1:
        raise UnsupportedModelError(source, None, "the model mixes spikingjelly step modes 's' and 'm' "
                                    "(use functional.set_step_mode(model, 's' or 'm'))")
    return modes == {"m"}
