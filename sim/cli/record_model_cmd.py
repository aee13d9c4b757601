"""``run_sim.py record-model FILE.py:FACTORY [--checkpoint CKPT] (--inputs X.npy | --dataset NAME)
--T T --out TRACE``: record a trace from your own spiking model — plain PyTorch, snnTorch or
spikingjelly (torch extra; docs/recording.md, "Bring your own model")."""

from __future__ import annotations

import argparse


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
    p.add_argument("--inputs", help=".npy array [n, ...] of analog inputs (or use --dataset)")
    p.add_argument("--dataset", default=None, help="without --inputs: record the test split of a bundled data set "
                   "(digits, fashion-mnist), labels included; with --inputs: the name stored in the trace "
                   "(default custom)")
    p.add_argument("--data-dir", help="where fashion-mnist lies (default: Debian's dataset-fashion-mnist)")
    p.add_argument("--T", type=int, required=True, help="time steps per sample")
    p.add_argument("--out", required=True, help="output trace (.h5)")
    p.add_argument("--labels", help=".npy array [n] of integer labels (default: unknown, -1)")
    p.add_argument("--samples", type=int, help="record only the first N inputs")
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


def _load_array(option: str, path: str):
    import numpy as np

    from sim.errors import ParameterError

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ParameterError(path, option, f"cannot read a .npy array: {' '.join(str(exc).split())}") from None


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
    import numpy as np

    from sim.errors import ParameterError
    from sim.record import require_torch
    from sim.report.output import check_destination

    torch = require_torch()
    if args.T < 1:
        raise ParameterError(None, "--T", f"must be >= 1, got {args.T}")
    if args.samples is not None and args.samples < 1:
        raise ParameterError(None, "--samples", f"must be >= 1, got {args.samples}")
    check_destination("--out", args.out)
    if args.inputs is None and args.dataset is None:
        raise ParameterError(None, "--inputs", "give --inputs X.npy or --dataset NAME")
    if args.inputs is None:
        from sim.record.data import load_dataset

        if args.labels is not None:
            raise ParameterError(None, "--labels", "--dataset brings its own labels (use --labels with --inputs)")
        test = load_dataset(args.dataset, args.data_dir)[1]
        x, labels = test.x.numpy(), test.y.numpy()
    else:
        x = _load_array("--inputs", args.inputs)
        labels = None if args.labels is None else _load_array("--labels", args.labels)
    if x.ndim < 2 or x.shape[0] < 1 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ParameterError(args.inputs, "--inputs", f"expected finite numbers [n, ...], got {x.dtype} {list(x.shape)}")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != x.shape[0]
                               or not np.issubdtype(labels.dtype, np.integer)):
        raise ParameterError(args.labels, "--labels", f"expected {x.shape[0]} integers, got {labels.dtype} {list(labels.shape)}")
    if args.samples is not None:
        if args.samples > x.shape[0]:
            raise ParameterError(args.inputs, "--samples", f"the inputs hold {x.shape[0]} samples, asked {args.samples}")
        x = x[:args.samples]
        labels = None if labels is None else labels[:args.samples]
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
    res = record_model(model, x, args.T, args.out, dataset=args.dataset or "custom", labels=labels, source=file,
                       encoding=args.encoding, seed=args.seed)
    kinds = ", ".join(f"{l.name}:{l.kind}" for l in res.layers)
    print(f"wrote {res.path}: {res.samples} samples, T={args.T}, {len(res.layers)} layers ({kinds})")
    return 0
