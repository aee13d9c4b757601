"""A small convolutional SNN in snnTorch, trained on scikit-learn's digits.

Written the way the snnTorch tutorials write one: an ``nn.Sequential`` of ``nn.Conv2d`` and
``snn.Leaky(beta=..., init_hidden=True, spike_grad=surrogate.atan())`` layers, a max-pool on the
spikes, a final ``Linear`` with an output ``Leaky(..., output=True)`` that returns (spikes,
membrane), trained with the rate-coded cross-entropy loss (``SF.ce_rate_loss``) through time.

    python examples/snntorch_cnn.py --epochs 20 --out /tmp/snntorch_cnn.pt

Architecture (input 1x8x8, T = 4, direct encoding: the same analog image every step):

    conv3x3 1->12, Leaky; max-pool 2x2          12x4x4
    conv3x3 12->32, Leaky; max-pool 2x2         32x2x2
    flatten, Linear 128->10, Leaky (output)     10

The network's own prediction is the output Leaky's spike count over T. ``record-model`` keeps
the final Leaky out of the trace: the readout it stores is the last Linear's output summed over
T (``potential``); ``main()`` prints the accuracy of both predictions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import snntorch as snn
import torch
import torch.nn as nn
from snntorch import functional as SF
from snntorch import surrogate, utils

T = 4
BETA = 0.9


def model() -> nn.Module:
    """The untrained network; one call per time step, the Leaky state kept inside (init_hidden)."""
    grad = surrogate.atan()
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, padding=1),
        snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True),
        nn.MaxPool2d(2),
        nn.Conv2d(12, 32, 3, padding=1),
        snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 10),
        snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True, output=True),
    )


def forward_pass(net, x, steps=T):
    """(output spikes [T, B, 10], last Linear's output summed over T [B, 10])."""
    utils.reset(net)
    currents = []
    hook = net[-2].register_forward_hook(lambda _m, _i, out: currents.append(out))
    try:
        spk_rec = torch.stack([net(x)[0] for _ in range(steps)])
    finally:
        hook.remove()
    return spk_rec, torch.stack(currents).sum(0)


@torch.no_grad()
def accuracy(net, x, y, batch=256):
    """(spike-count accuracy, readout-current accuracy): argmax of the output spike count (ties:
    the first class, as SF.accuracy_rate) and of the last Linear's output summed over T."""
    net.eval()
    spk_hits = cur_hits = 0
    for i in range(0, len(x), batch):
        spk, cur = forward_pass(net, x[i:i + batch])
        spk_hits += int((spk.sum(0).argmax(1) == y[i:i + batch]).sum())
        cur_hits += int((cur.argmax(1) == y[i:i + batch]).sum())
    return spk_hits / len(x), cur_hits / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True, help="where to save the state_dict")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repo root, for sim.record.data
    from sim.record.data import load_digits
    train, test = load_digits()
    xtr, ytr = train.x, train.y
    xte, yte = test.x, test.y

    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn = SF.ce_rate_loss()
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            spk_rec, _ = forward_pass(net, xtr[idx])   # BPTT through the T steps
            loss = loss_fn(spk_rec, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        tr, te = accuracy(net, xtr, ytr), accuracy(net, xte, yte)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}, train {tr[0]:.4f}, test {te[0]:.4f} "
              f"(spike count); test {te[1]:.4f} (readout current) ({time.time() - start:.0f} s)", file=sys.stderr)
    print(f"training took {time.time() - start:.0f} s; test accuracy on {len(xte)} samples, T = {T}: "
          f"{te[0]:.4f} (output spike count), {te[1]:.4f} (last Linear's output summed over T)", file=sys.stderr)
    torch.save(net.state_dict(), args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
