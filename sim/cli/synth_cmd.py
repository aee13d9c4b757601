"""``run_sim.py synth``: a synthetic trace of a supported model shape at a target spike rate."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from sim.cli import options
    from sim.trace.shapes import MODEL_SHAPES

    p = sub.add_parser(
        "synth", help="write a synthetic trace at a target spike rate (for sparsity sweeps)",
        description="Write a synthetic trace (marked synthetic) for a supported model shape. "
                    "Each neuron's ANN-twin level is Binomial(T, rate) and its spikes are the IF "
                    "neuron's response to the constant drive level/T.")
    p.add_argument("--model", required=True, choices=sorted(MODEL_SHAPES), help="model shape")
    p.add_argument("--T", type=int, required=True, help="time steps")
    p.add_argument("--rate", required=True,
                   help="spike rate in [0, 1], or per layer: conv1=0.2,conv2=0.05,... "
                        "(layers not named take the value of the key 'default')")
    p.add_argument("--samples", type=int, default=4, help="number of samples (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-weights", action="store_true", help="do not store random int8 weights")
    p.add_argument("--maxpool", action=argparse.BooleanOptionalAction, default=None,
                   help="graph models (resnet18, resnet19, sew_resnet, tiny_resnet): a 3x3 max-pool "
                        "(stride 2) after the stem (default: the model's: on for sew_resnet and tiny_resnet)")
    p.add_argument("--neuron", choices=["IF", "LIF"], default=None,
                   help="graph models: every layer's neuron (default: IF; sew_resnet: LIF, leak 0.5, reset to zero)")
    p.add_argument("--leak", type=float, default=None,
                   help="LIF: the factor the membrane keeps per step, in (0, 1] (default 0.5)")
    p.add_argument("--reset", choices=["subtract", "zero"], default=None,
                   help="graph models: reset by subtraction or to zero (default: subtract for IF, zero for LIF)")
    p.add_argument("--residual", choices=["spikes", "current"], default=None,
                   help="graph models: 'spikes' (default): a block's last conv and shortcut conv fire and the add "
                        "re-spikes their spikes; 'current': they output currents that the add sums before its neuron")
    p.add_argument("--encoding", choices=["direct", "rate", "events"], default="direct",
                   help="direct: the analog input drives the first layers (default); rate: input spikes "
                        "Bernoulli(pixel) per step; events: an event stream at the input's rate (--rate, "
                        "or its 'input' entry), no analog input stored")
    p.add_argument("--snn-only", action="store_true",
                   help="store no ANN-twin levels: the twin is derived from the spike counts (always so "
                        "for LIF neurons)")
    p.add_argument("--out", required=True, help="output trace (.h5)")
    options.add_quiet(p, "no progress bar (shown on stderr when it is a terminal)")
    p.set_defaults(func=run)


def parse_rate(text: str, spiking: list[str]) -> float | dict[str, float]:
    """One rate, or ``name=rate`` pairs (with optional ``default=``) for the spiking layers."""
    from sim.errors import ParameterError

    def value(s: str) -> float:
        try:
            r = float(s)
        except ValueError:
            raise ParameterError(None, "--rate", f"'{s}' is not a number") from None
        if not 0.0 <= r <= 1.0:
            raise ParameterError(None, "--rate", f"a spike rate must be in [0, 1], got {r}")
        return r

    if "=" not in text:
        return value(text)
    pairs = dict(item.split("=", 1) for item in text.split(",") if item)
    default = pairs.pop("default", None)
    unknown = sorted(set(pairs) - set(spiking))
    if unknown:
        raise ParameterError(None, "--rate", f"unknown spiking layer(s) {unknown}; known: {spiking}")
    missing = [n for n in spiking if n not in pairs]
    if missing and default is None:
        raise ParameterError(None, "--rate", f"no rate for {missing}; give them or 'default='")
    return {n: value(pairs.get(n, default)) for n in spiking}


def neuron_option(args: argparse.Namespace):
    """The NeuronModel the --neuron, --leak and --reset options ask for (None: the model's)."""
    from sim.errors import ParameterError
    from sim.trace.shapes import GRAPH_MODELS
    from sim.trace.schema import NeuronModel

    given = [f"--{k}" for k in ("maxpool", "neuron", "leak", "reset", "residual") if getattr(args, k) is not None]
    if given and args.model not in GRAPH_MODELS:
        raise ParameterError(None, given[0], f"applies to the graph models ({', '.join(GRAPH_MODELS)}), "
                             f"not to {args.model}")
    if args.neuron is None and args.leak is None and args.reset is None:
        return None
    kind = args.neuron or ("LIF" if args.leak is not None else "IF")
    if kind == "IF" and args.leak is not None:
        raise ParameterError(None, "--leak", "an IF neuron has no leak (use --neuron LIF)")
    leak = 0.0 if kind == "IF" else (0.5 if args.leak is None else args.leak)
    if kind == "LIF" and not 0 < leak <= 1:
        raise ParameterError(None, "--leak", f"must be in (0, 1], got {args.leak}")
    reset = args.reset or ("subtract" if kind == "IF" else "zero")
    return NeuronModel(type=kind, threshold=NeuronModel.threshold if kind == "IF" else 1.0, reset=reset, leak=leak)


def run(args: argparse.Namespace) -> int:
    import sys

    from sim.errors import ParameterError
    from sim.report.output import check_destination
    from sim.trace.limits import check_request
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    check_destination("--out", args.out)
    if args.seed < 0:
        raise ParameterError(None, "--seed", f"must be >= 0, got {args.seed}")
    if args.T < 1:
        raise ParameterError(None, "--T", f"must be >= 1, got {args.T}")
    if args.samples < 1:
        raise ParameterError(None, "--samples", f"must be >= 1, got {args.samples}")
    layers, input_shape = model_layers(args.model, args.T, maxpool=args.maxpool, neuron=neuron_option(args),
                                       residual=args.residual)
    check_request(args.T, args.samples, input_shape, layers)   # what the reader accepts, before writing
    # a max-pool's spikes are the OR of its input's, not drawn at a rate
    drawn = [l.name for l in layers if l.output == "spikes" and l.kind != "maxpool"]
    rate = parse_rate(args.rate, drawn + (["input"] if args.encoding == "events" else []))
    # the writer verifies the file with the reader before moving it into place: on a failure
    # (TraceFormatError, one line, exit 2) nothing is left at --out
    write_synthetic_trace(args.out, layers, input_shape, model=args.model, T=args.T,
                          n_samples=args.samples, rate=rate, seed=args.seed,
                          with_weights=not args.no_weights, snn_only=True if args.snn_only else None,
                          encoding=args.encoding, progress=not args.quiet)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
