"""PyTorch side of the simulator (needs the ``torch`` extra): record traces from trained networks.

The method is the paper's (Yan, Bai & Wong, arXiv:2409.08290): train an ANN whose activations
are quantised to T levels (Q_T, :mod:`sim.record.quant`), fold BatchNorm into the preceding
conv, quantise weights to int8, and convert it layer by layer into an integrate-and-fire SNN
(:mod:`sim.record.convert`) that computes the same function: each IF neuron fires exactly
T x Q_T(drive) times. :mod:`sim.record.recorder` captures both networks' events with forward
hooks and writes the trace format of :mod:`sim.trace`.

Importing :mod:`sim` never imports this package; this package imports torch.
"""

TORCH_EXTRA_HINT = "needs the torch extra: pip install -e '.[torch]'"


def require_torch():
    """Import and return torch, or raise :class:`sim.errors.ParameterError` with the install hint."""
    try:
        import torch
    except ImportError:
        from sim.errors import ParameterError

        raise ParameterError(None, None, TORCH_EXTRA_HINT) from None
    return torch
