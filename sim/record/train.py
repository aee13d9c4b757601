"""Training the Q_T ANN with the paper's two sparsity regularisers.

Loss = cross-entropy + lambda_a * (L1 of clamp(x, 0, 1) over the conv layers' outputs, summed
over neurons, averaged over the batch). The weight penalty is the optimiser's weight decay
(decoupled, AdamW, for ``adam``; L2 for ``sgd``); the authors used 0.05.
Progress goes to stderr (tqdm); a checkpoint is written (atomically) after every epoch.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from sim.record.data import Split
from sim.record.models import QANN, build_model

CHECKPOINT_FORMAT = "snn-energy-sim/qann-checkpoint/1"


@dataclass
class TrainConfig:
    model: str
    dataset: str
    T: int = 6
    theta: float = 0.9999
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.05
    lambda_a: float = 0.0
    train_samples: int | None = None
    eval_samples: int | None = None
    seed: int = 0
    threads: int = 2
    data_dir: str | None = None
    time_budget: float | None = None   # seconds; the LR schedule follows elapsed time too


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    spike_rate: float       # the paper's definition: spiking outputs except layer 1
    seconds: float
    steps: int = 0          # optimiser steps taken so far (all epochs)


@dataclass
class History:
    epochs: list[EpochResult] = field(default_factory=list)


WARMUP = 0.15  # fraction of the schedule spent warming up (as torch's OneCycleLR's default 0.3, shorter)


def one_cycle_lr(peak: float, f: float) -> float:
    """Learning rate at schedule fraction ``f`` in [0, 1]: cosine warm-up from peak/25, cosine decay."""
    if f < WARMUP:
        return peak * (0.04 + 0.96 * (1 - math.cos(math.pi * f / WARMUP)) / 2)
    f = min(1.0, (f - WARMUP) / (1 - WARMUP))
    return peak * (1e-4 + (1 - 1e-4) * (1 + math.cos(math.pi * f)) / 2)


def rate_layer_names(model: QANN) -> list[str]:
    """Spiking layers counted in the paper's spike rate: all but the first (direct-encoded) layer."""
    names = [s.name for s in model.specs if s.output == "spikes"]
    return names[1:] if names and names[0] == model.specs[0].name else names


@torch.no_grad()
def evaluate(model: QANN, data: Split, batch_size: int = 256) -> tuple[float, float]:
    """(accuracy, spike rate) of the Q_T network: the rate is mean(level / T) over rate layers."""
    model.eval()
    names = set(rate_layer_names(model))
    correct, level_sum, neurons = 0, 0.0, 0
    for i in range(0, len(data), batch_size):
        x, y = data.x[i:i + batch_size], data.y[i:i + batch_size]
        logits, outs = model.forward_levels(_layout(x))
        correct += int((logits.argmax(1) == y).sum())
        for name, q in outs.items():
            if name in names:
                level_sum += float(q.double().sum())
                neurons += q.numel()
    return correct / max(1, len(data)), (level_sum / neurons if neurons else 0.0)


def _layout(x: torch.Tensor) -> torch.Tensor:
    # channels_last measured ~1.5x faster for VGG16 training on this machine's CPU
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def save_checkpoint(path, model: QANN, cfg: TrainConfig, history: History) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.name, "T": model.T, "theta": model.theta,
                "config": asdict(cfg), "history": [asdict(e) for e in history.epochs],
                "state_dict": model.state_dict()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path) -> tuple[QANN, dict]:
    """The trained network (eval mode) and the checkpoint's metadata."""
    from sim.errors import ParameterError

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ParameterError(str(path), None, "checkpoint file does not exist") from None
    except Exception as exc:  # torch raises pickle, zip and runtime errors for a foreign file
        raise ParameterError(str(path), None, f"not a readable torch checkpoint ({type(exc).__name__}); "
                             "expected a file written by 'run_sim.py train'") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ParameterError(str(path), "format", f"not a checkpoint written by 'run_sim.py train' ({CHECKPOINT_FORMAT})")
    try:
        model = build_model(ck["model"], ck["T"], ck["theta"])
        model.load_state_dict(ck["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise ParameterError(str(path), "state_dict", f"does not fit the model: {_first_line(exc)}") from None
    model.eval()
    return model, ck


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def train(cfg: TrainConfig, train_set: Split, test_set: Split, checkpoint: str | None = None,
          progress: bool = True, log=sys.stderr) -> tuple[QANN, History]:
    """Train ``cfg.model`` on ``train_set``; evaluate on ``test_set`` after each epoch."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = build_model(cfg.model, cfg.T, cfg.theta).to(memory_format=torch.channels_last)
    train_set, test_set = train_set.head(cfg.train_samples), test_set.head(cfg.eval_samples)
    if cfg.optimizer == "adam":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total_steps, step_count, start = cfg.epochs * steps_per_epoch, 0, time.time()

    def progress_fraction() -> float:
        # with a time budget, the schedule runs on whichever of steps and time is further along,
        # so a run on a busy machine still anneals and stops on time
        f = step_count / total_steps
        if cfg.time_budget:
            f = max(f, (time.time() - start) / cfg.time_budget)
        return f

    gen = torch.Generator().manual_seed(cfg.seed)
    history = History()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.time()
        model.train()
        model.keep_activations(cfg.lambda_a > 0)
        order = torch.randperm(len(train_set), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", file=sys.stderr,
                   disable=not progress, leave=False, dynamic_ncols=True)
        for step in bar:
            f = progress_fraction()
            if f >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = one_cycle_lr(cfg.lr, f)
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x, y = _layout(train_set.x[idx]), train_set.y[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if cfg.lambda_a > 0:
                loss = loss + cfg.lambda_a * model.conv_activation_l1()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_count += 1
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        model.keep_activations(False)
        acc, rate = evaluate(model, test_set)
        res = EpochResult(epoch, loss_sum / max(1, seen), correct / max(1, seen), acc, rate, time.time() - t0, step_count)
        history.epochs.append(res)
        print(f"epoch {epoch}: loss {res.train_loss:.4f}  train acc {res.train_accuracy:.4f}  "
              f"test acc {acc:.4f}  spike rate {rate:.4f}  ({res.seconds:.0f} s, {step_count} steps)",
              file=log, flush=True)
        if checkpoint:
            save_checkpoint(checkpoint, model, cfg, history)
        if progress_fraction() >= 1.0:
            if epoch < cfg.epochs:
                print(f"time budget reached after {step_count} of {total_steps} steps", file=log, flush=True)
            break
    model.eval()
    return model, history
