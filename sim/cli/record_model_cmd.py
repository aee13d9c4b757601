"""``run_sim.py record-model FILE.py:FACTORY [--checkpoint CKPT] (--inputs X.npy | --dataset NAME)
--T T --out TRACE``: record a trace from your own spiking model — plain PyTorch, snnTorch or
spikingjelly (torch extra; docs/recording.md, "Bring your own model")."""

from __future__ import annotations

import argparse

from sim.cli import inputs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "record-model", help="record an SNN-only trace from your own step-by-step PyTorch SNN (needs torch)",
        description="Import FILE.py, call FACTORY() for the model (a torch.nn.Module run one time step per "
                    "call — or a multi-step spikingjelly model run on [T, B, ...] — whose neurons are "
                    "snnTorch Leaky, spikingjelly IFNode/LIFNode/ParametricLIFNode or modules marked "
                    "is_spiking_neuron = True), load CKPT into it, run it T steps on each input and write "
                    "an SNN-only trace (twin_levels derived, int8 weights per tensor). An unsupported "
                    "module is refused with one line naming it.")
    p.add_argument("model", metavar="FILE.py:FACTORY", help="Python file and the function returning the model")
    p.add_argument("--checkpoint", metavar="CKPT", help="a state_dict saved with torch.save, loaded into the "
                   "model (strict); also a dict holding it under 'state_dict' or 'model'")
    inputs.add_input_options(p)
    p.add_argument("--T", type=int, required=True, help="time steps per sample")
    p.add_argument("--out", required=True, help="output trace (.h5)")
    p.add_argument("--encoding", choices=("direct", "rate", "events"), default="direct",
                   help="direct: the analog input every step (default); rate: Bernoulli spikes of the "
                        "intensities in [0, 1]; events: --inputs are already 0/1 spikes [n, T, ...] (e.g. "
                        "DVS frames); rate and event inputs are stored as the trace's input spikes")
    p.add_argument("--seed", type=int, default=0, help="seed of the rate encoding (default 0)")
    p.set_defaults(func=run)


def _load_factory(spec: str):
    """The callable FACTORY of FILE.py (ParameterError naming the file or the factory)."""
    import importlib.util
    from pathlib import Path

    from sim.errors import ParameterError

    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise ParameterError(spec, "FILE.py:FACTORY", "expected FILE.py:FACTORY")
    path = Path(file)
    if not path.is_file():
        raise ParameterError(file, None, "no such file")
    mod_spec = importlib.util.spec_from_file_location(f"_record_model_{path.stem}", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:   # the user's file: any error becomes one line
        raise ParameterError(file, None, f"importing it failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ParameterError(file, name, "no such function in the file")
    try:
        return factory()
    except Exception as exc:
        raise ParameterError(file, name, f"calling it failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from None


def _load_checkpoint(model, path: str) -> None:
    """Load a state_dict (or a dict holding one under 'state_dict'/'model') into ``model``, strictly;
    any failure is one line naming the checkpoint."""
    import torch

    from sim.errors import ParameterError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ParameterError(path, "--checkpoint", "no such file") from None
    except Exception as exc:   # pickle, zip and torch errors of a damaged or foreign file
        raise ParameterError(path, "--checkpoint", f"not a torch checkpoint: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ParameterError(path, "--checkpoint", f"expected a state_dict, got {type(state).__name__}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ParameterError(path, "--checkpoint", f"does not fit the model: {' '.join(str(exc).split())[:300]}") from None


def run(args: argparse.Namespace) -> int:
    from sim.errors import ParameterError
    from sim.record import require_torch
    from sim.report.output import check_destination

    torch = require_torch()
    if args.T < 1:
        raise ParameterError(None, "--T", f"must be >= 1, got {args.T}")
    check_destination("--out", args.out)
    x, labels, dataset = inputs.load_inputs(args)
    import logging

    # spikingjelly's import makes torch warn once that Triton (a GPU compiler) is absent: noise here
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    model = _load_factory(args.model)
    if not isinstance(model, torch.nn.Module):
        raise ParameterError(args.model, None, f"the factory returned {type(model).__name__}, not a torch.nn.Module")
    if args.checkpoint is not None:
        _load_checkpoint(model, args.checkpoint)
    from sim.record.own_model import record_model

    file = args.model.rpartition(":")[0]
    res = record_model(model, x, args.T, args.out, dataset=dataset, labels=labels, source=file,
                       encoding=args.encoding, seed=args.seed)
    kinds = ", ".join(f"{l.name}:{l.kind}" for l in res.layers)
    print(f"wrote {res.path}: {res.samples} samples, T={args.T}, {len(res.layers)} layers ({kinds})")
    return 0
