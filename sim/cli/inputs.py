"""The inputs of ``record-model`` and ``import-nir``: an .npy array or a bundled data set's test
split, with labels, cut to the first N samples; one line naming the file and option otherwise."""

from __future__ import annotations


def add_input_options(p, what: str = "record") -> None:
    p.add_argument("--inputs", help=".npy array [n, ...] of inputs (or use --dataset)")
    p.add_argument("--dataset", default=None, help="without --inputs: the test split of a bundled data set "
                   "(digits, fashion-mnist), labels included (needs the torch extra); with --inputs: the "
                   "name stored in the trace (default custom)")
    p.add_argument("--data-dir", help="where fashion-mnist lies (default: Debian's dataset-fashion-mnist)")
    p.add_argument("--labels", help=".npy array [n] of integer labels (default: unknown, -1)")
    p.add_argument("--samples", type=int, help=f"{what} only the first N inputs")


def load_array(option: str, path: str):
    import numpy as np

    from sim.errors import ParameterError

    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ParameterError(path, option, "no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ParameterError(path, option, f"cannot read a .npy array: {' '.join(str(exc).split())}") from None


def load_inputs(args):
    """(inputs [n, ...], labels [n] or None, data set name) from --inputs/--labels or --dataset,
    cut to --samples."""
    import numpy as np

    from sim.errors import ParameterError

    if args.samples is not None and args.samples < 1:
        raise ParameterError(None, "--samples", f"must be >= 1, got {args.samples}")
    if args.inputs is None and args.dataset is None:
        raise ParameterError(None, "--inputs", "give --inputs X.npy or --dataset NAME")
    if args.inputs is None:
        from sim.record import require_torch

        require_torch()
        from sim.record.data import load_test_split

        if args.labels is not None:
            raise ParameterError(None, "--labels", "--dataset brings its own labels (use --labels with --inputs)")
        test = load_test_split(args.dataset, args.data_dir)
        x, labels, source = test.x.numpy(), test.y.numpy(), f"--dataset {args.dataset}"
    else:
        x = load_array("--inputs", args.inputs)
        labels = None if args.labels is None else load_array("--labels", args.labels)
        source = args.inputs
    if x.ndim < 2 or x.shape[0] < 1 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ParameterError(source, "--inputs", f"expected finite numbers [n, ...], got {x.dtype} {list(x.shape)}")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != x.shape[0]
                               or not np.issubdtype(labels.dtype, np.integer)):
        raise ParameterError(args.labels, "--labels", f"expected {x.shape[0]} integers, got {labels.dtype} {list(labels.shape)}")
    if args.samples is not None:
        if args.samples > x.shape[0]:
            raise ParameterError(source, "--samples", f"the inputs hold {x.shape[0]} samples, asked {args.samples}")
        x = x[:args.samples]
        labels = None if labels is None else labels[:args.samples]
    return x, labels, args.dataset or "custom"
