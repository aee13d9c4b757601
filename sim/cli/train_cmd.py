"""``run_sim.py train``: train a Q_T ANN with the paper's sparsity regularisers (torch extra)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from sim.trace.shapes import MODEL_SHAPES

    p = sub.add_parser(
        "train", help="train a quantised (Q_T) ANN for conversion to an IF SNN (needs torch)",
        description="Train a network whose activations are Q_T(x) = floor(clamp(x,0,1)*T)/T "
                    "(straight-through gradient) with the paper's two sparsity regularisers: "
                    "lambda_a * L1 of the clamped conv activations, and weight decay. Writes a "
                    "checkpoint after every epoch; progress on stderr.")
    p.add_argument("--model", required=True, choices=sorted(MODEL_SHAPES), help="network shape")
    p.add_argument("--dataset", required=True, choices=["digits", "fashion-mnist", "cifar10"])
    p.add_argument("--data-dir", help="dataset directory (CIFAR-10 python batches; Fashion-MNIST idx files)")
    p.add_argument("--T", type=int, default=6, help="time window / Q_T levels (default 6)")
    p.add_argument("--threshold", type=float, default=0.9999, help="IF threshold theta (default 0.9999)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="adam = AdamW")
    p.add_argument("--weight-decay", type=float, default=0.05, help="weight penalty (default 0.05, the authors')")
    p.add_argument("--lambda-a", type=float, default=0.0,
                   help="weight of the L1 activation regulariser (per-sample sum over conv outputs)")
    p.add_argument("--train-samples", type=int, help="train on the first N training samples only")
    p.add_argument("--eval-samples", type=int, help="evaluate on the first N test samples only")
    p.add_argument("--time-budget", type=float, metavar="MINUTES",
                   help="stop after this many minutes; the learning-rate schedule follows the elapsed "
                        "time as well as the steps, so the run still anneals on a busy machine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="checkpoint file (.pt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.errors import ParameterError
    from sim.record import require_torch

    from sim.report.output import check_destination

    check_destination("--out", args.out, suffix=".pt")  # before any training: nothing is lost
    require_torch()
    from sim.record.data import load_dataset
    from sim.record.train import TrainConfig, train

    for key in ("T", "epochs", "batch_size", "threads"):
        if getattr(args, key) < 1:
            raise ParameterError(None, f"--{key.replace('_', '-')}", f"must be >= 1, got {getattr(args, key)}")
    if not 0 < args.threshold <= 1:
        raise ParameterError(None, "--threshold", f"must be in (0, 1], got {args.threshold}")
    if args.time_budget is not None and args.time_budget <= 0:
        raise ParameterError(None, "--time-budget", f"must be > 0 minutes, got {args.time_budget}")
    if args.lambda_a < 0 or args.weight_decay < 0:
        raise ParameterError(None, "--lambda-a/--weight-decay", "must be >= 0")
    cfg = TrainConfig(model=args.model, dataset=args.dataset, T=args.T, theta=args.threshold,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                      weight_decay=args.weight_decay, lambda_a=args.lambda_a, train_samples=args.train_samples,
                      eval_samples=args.eval_samples, seed=args.seed,
                      time_budget=None if args.time_budget is None else 60.0 * args.time_budget, threads=args.threads, data_dir=args.data_dir)
    train_set, test_set = load_dataset(args.dataset, args.data_dir)
    from sim.trace.shapes import model_layers

    _, input_shape = model_layers(args.model, args.T)
    if tuple(train_set.x.shape[1:]) != tuple(input_shape):
        raise ParameterError(None, "--model", f"{args.model} takes inputs {list(input_shape)}, "
                             f"{args.dataset} has {list(train_set.x.shape[1:])}")
    train(cfg, train_set, test_set, checkpoint=args.out, progress=not args.no_progress)
    print(f"wrote {args.out}")
    return 0
