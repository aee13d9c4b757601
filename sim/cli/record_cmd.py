"""``run_sim.py record CHECKPOINT --samples N --out TRACE``: convert and record a trace (torch extra)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "record", help="convert a trained Q_T ANN to an IF SNN and record a trace (needs torch)",
        description="Load a checkpoint written by 'train', fold BN, quantise weights to int8, "
                    "convert to the equivalent IF SNN, record the first N test samples (SNN spikes "
                    "and the ANN twin's Q_T levels per layer) to a trace, and print the test "
                    "accuracy of the SNN and of the ANN twin.")
    p.add_argument("checkpoint", help="checkpoint (.pt) written by 'run_sim.py train'")
    p.add_argument("--samples", type=int, required=True, help="test samples to record")
    p.add_argument("--out", required=True, help="output trace (.h5)")
    p.add_argument("--data-dir", help="dataset directory (default: the checkpoint's)")
    p.add_argument("--eval-samples", type=int,
                   help="evaluate accuracy on the first N test samples (default: the whole test set; 0: skip)")
    p.add_argument("--dynamics", choices=("window", "causal"), default="window",
                   help="SNN dynamics: 'window' (default; each layer driven by W.mean_t(s_t)+b, the paper's "
                        "converter, spike counts == T x twin levels) or 'causal' (step by step, W.s_t+b at step t)")
    p.add_argument("--batch-size", type=int, default=16, help="samples per batch while recording")
    p.add_argument("--weight-bits", type=int, default=8, help="weight quantisation bits (default 8)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bars (shown on stderr when it is a terminal: samples/s, ETA)")
    p.add_argument("--json", metavar="FILE|-", help="also write the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.errors import ParameterError
    from sim.record import require_torch

    torch = require_torch()
    if args.samples < 1 or args.batch_size < 1:
        raise ParameterError(None, "--samples/--batch-size", "must be >= 1")
    if args.threads < 1:
        raise ParameterError(None, "--threads", f"must be >= 1, got {args.threads}")
    if args.eval_samples is not None and args.eval_samples < 0:
        raise ParameterError(None, "--eval-samples", f"must be >= 0, got {args.eval_samples}")
    if not 2 <= args.weight_bits <= 16:
        raise ParameterError(None, "--weight-bits", f"must be in 2..16, got {args.weight_bits}")
    from sim.report.output import check_destination, write_json
    from sim.trace.limits import check_request
    from sim.record.convert import convert
    from sim.record.data import load_test_split
    from sim.record.recorder import evaluate_converted, record_trace
    from sim.record.train import load_checkpoint

    check_destination("--out", args.out)
    if args.json is not None and args.json != "-":
        check_destination("--json", args.json)
    torch.set_num_threads(args.threads)
    model, ck = load_checkpoint(args.checkpoint)
    cfg = ck.get("config", {})
    dataset = cfg.get("dataset", "digits")
    # the test split only: the training split (737 MB of Fashion-MNIST floats) is dropped at once
    test = load_test_split(dataset, args.data_dir or cfg.get("data_dir"))
    if args.samples > len(test):
        raise ParameterError(None, "--samples", f"the {dataset} test set has {len(test)} samples, asked {args.samples}")
    conv = convert(model, args.weight_bits, args.dynamics)
    # what the reader accepts (T, samples, memory), checked before recording anything; the
    # writer then runs the reader's full validation on the file before moving it into place
    check_request(conv.T, args.samples, tuple(test.x.shape[1:]), conv.specs, file=args.checkpoint, T_option="T")
    desc = (f"{model.name} on {dataset}, T={model.T}, threshold={model.theta}; trained with "
            + ", ".join(f"{k}={cfg[k]}" for k in ("epochs", "lr", "optimizer", "weight_decay", "lambda_a",
                                                 "train_samples", "batch_size", "seed") if k in cfg)
            + f"; converted Q_T ANN -> IF SNN{' (causal dynamics)' if args.dynamics == 'causal' else ''}, "
            f"int{args.weight_bits} weights (BN folded); first "
            f"{args.samples} test samples")
    res = record_trace(conv, test, args.samples, args.out, dataset=dataset, batch_size=args.batch_size,
                       description=desc, progress=not args.no_progress)
    out = {"trace": args.out, "model": model.name, "dataset": dataset, "T": model.T, "dynamics": args.dynamics,
           "recorded_samples": res.samples, "record_seconds": round(res.seconds, 3),
           "record_seconds_per_sample": round(res.seconds_per_sample, 4),
           "record_cpu_seconds_per_sample": round(res.cpu_seconds / res.samples, 4),
           "weight_write_seconds": round(res.weight_seconds, 3),
           "recorded_snn_accuracy": res.snn_correct / res.samples,
           "recorded_ann_accuracy": res.ann_correct / res.samples}
    print(f"wrote {args.out}: {res.samples} samples in {res.seconds:.2f} s "
          f"({res.seconds_per_sample:.3f} s/sample, CPU {res.cpu_seconds / res.samples:.3f} s/sample; weights {res.weight_seconds:.2f} s once); on them SNN {out['recorded_snn_accuracy']:.4f}, "
          f"ANN twin {out['recorded_ann_accuracy']:.4f}")
    n_eval = len(test) if args.eval_samples is None else min(args.eval_samples, len(test))
    if n_eval > 0:
        acc = evaluate_converted(conv, test.head(n_eval), progress=not args.no_progress)
        out.update({"eval_samples": acc.samples, "snn_accuracy": acc.snn, "ann_accuracy": acc.ann,
                    "eval_spike_rate": acc.spike_rate})
        print(f"test accuracy over {acc.samples} samples: SNN {acc.snn:.4f}, ANN twin {acc.ann:.4f}; "
              f"SNN spike rate (paper's definition) {acc.spike_rate:.4f}")
    if args.json:
        write_json(out, args.json)
    return 0
