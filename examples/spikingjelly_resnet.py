"""A small spiking ResNet in spikingjelly (activation_based), trained on scikit-learn's digits.

Written the way a spikingjelly user would write it: ``layer.Conv2d`` / ``layer.BatchNorm2d``,
``neuron.IFNode`` with the ``surrogate.ATan`` surrogate gradient, single-step mode (the model is
called once per time step and keeps its membrane state), residual blocks, trained with
backpropagation through time and Adam.

The residual blocks add two **spike** tensors and re-spike the sum with a neuron of their own
(``sn_out(block_out_spikes + shortcut_spikes)``), the form the simulator's trace format
expresses as an ``add`` layer. (spikingjelly's SEW-ResNet ``ADD`` feeds the integer sum 0/1/2
straight to the next conv, which is not spikes: ``record-model`` refuses it and asks for a
neuron after the add. Adding two conv *currents* before one neuron, as spikingjelly's
``spiking_resnet`` does, is recorded too, as membrane/current addition.)

BatchNorm is used for training only: ``record-model`` refuses a BatchNorm, so ``main()`` folds
every BatchNorm into the conv before it (``fold_batchnorm``) and saves the state_dict of the
BatchNorm-free network that ``model()`` builds. That checkpoint is what ``record-model
--checkpoint`` loads.

    python examples/spikingjelly_resnet.py --epochs 30 --out /tmp/sj_resnet.pt

Architecture (input 1x8x8, T = 4, direct encoding: the same analog image every step):

    stem   conv3x3 1->16, IF                                   16x8x8
    block1 conv3x3 16->16, IF; conv3x3 16->16, IF; + input, IF  16x8x8
    pool   max-pool 2x2 (on spikes)                             16x4x4
    block2 conv3x3 16->32, IF; conv3x3 32->32, IF;
           + (conv1x1 16->32, IF), IF                           32x4x4
    pool   avg-pool 2x2, IF                                     32x2x2
    head   flatten, Linear 128->10 (readout, no neuron; prediction = argmax of its output summed over T)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron, surrogate

T = 4


def _neuron():
    # IF neuron, threshold 1, hard reset to 0 (spikingjelly's defaults), ATan surrogate
    return neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True)


def _conv(cin, cout, k, batchnorm):
    """A conv (+ BatchNorm when training). Without BatchNorm the conv carries the folded bias."""
    if batchnorm:
        return nn.Sequential(layer.Conv2d(cin, cout, k, padding=k // 2, bias=False), layer.BatchNorm2d(cout))
    return layer.Conv2d(cin, cout, k, padding=k // 2, bias=True)


class BasicBlock(nn.Module):
    """conv-IF-conv-IF, plus the shortcut's spikes (the input's, or a 1x1 conv-IF's), re-spiked."""

    def __init__(self, cin, cout, batchnorm=False):
        super().__init__()
        self.conv1, self.sn1 = _conv(cin, cout, 3, batchnorm), _neuron()
        self.conv2, self.sn2 = _conv(cout, cout, 3, batchnorm), _neuron()
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, batchnorm), _neuron())
        self.sn_out = _neuron()

    def forward(self, x):
        out = self.sn2(self.conv2(self.sn1(self.conv1(x))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.sn_out(out + shortcut)   # two spike tensors added, then re-spiked


class SpikingResNet(nn.Module):
    def __init__(self, batchnorm=False, num_classes=10):
        super().__init__()
        self.stem = _conv(1, 16, 3, batchnorm)
        self.sn_stem = _neuron()
        self.block1 = BasicBlock(16, 16, batchnorm)
        self.pool1 = layer.MaxPool2d(2)
        self.block2 = BasicBlock(16, 32, batchnorm)
        self.pool2 = layer.AvgPool2d(2)
        self.sn_pool2 = _neuron()
        self.flatten = layer.Flatten()
        self.fc = layer.Linear(32 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.sn_stem(self.stem(x))
        x = self.pool1(self.block1(x))
        x = self.sn_pool2(self.pool2(self.block2(x)))
        return self.fc(self.flatten(x))


def model() -> nn.Module:
    """The untrained, BatchNorm-free network in single-step mode (what record-model loads)."""
    return SpikingResNet(batchnorm=False)


def model_multistep() -> nn.Module:
    """The same network (same state_dict keys) in multi-step mode: ``net(x_seq)``, x_seq [T, B, ...]."""
    net = SpikingResNet(batchnorm=False)
    functional.set_step_mode(net, "m")
    return net


def fold_batchnorm(trained: SpikingResNet) -> SpikingResNet:
    """A BatchNorm-free ``model()`` computing the same currents as ``trained`` in eval mode:
    each conv+BN pair becomes one conv with w' = w * g / sqrt(var + eps) and
    b' = beta + (b - mean) * g / sqrt(var + eps)."""
    folded = model()
    state = {}
    for name, mod in trained.named_modules():
        if isinstance(mod, nn.Sequential) and len(mod) == 2 and isinstance(mod[1], nn.BatchNorm2d):
            conv, bn = mod[0], mod[1]
            g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            state[f"{name}.weight"] = conv.weight * g[:, None, None, None]
            state[f"{name}.bias"] = bn.bias + (bias - bn.running_mean) * g
    state["fc.weight"], state["fc.bias"] = trained.fc.weight, trained.fc.bias
    folded.load_state_dict({k: v.detach().clone() for k, v in state.items()})
    return folded


@torch.no_grad()
def recalibrate_batchnorm(net, x, batch=256):
    """Replace the BatchNorms' running statistics (an exponential average of the last batches,
    which drift while the weights still move) by their average over the whole training set."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None   # cumulative average
    net.train()
    for i in range(0, len(x), batch):
        run(net, x[i:i + batch])
    net.eval()


def run(net, x, steps=T):
    """The readout summed over ``steps`` steps (single-step mode), the state reset afterwards."""
    out = sum(net(x) for _ in range(steps))
    functional.reset_net(net)
    return out


@torch.no_grad()
def accuracy(net, x, y, batch=256):
    net.eval()
    hits = sum(int((run(net, x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return hits / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True, help="where to save the folded (BatchNorm-free) state_dict")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repo root, for sim.record.data
    from sim.record.data import load_digits
    train, test = load_digits()
    xtr, ytr = torch.as_tensor(train.x), torch.as_tensor(train.y).long()
    xte, yte = torch.as_tensor(test.x), torch.as_tensor(test.y).long()

    net = SpikingResNet(batchnorm=True)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            out = run(net, xtr[idx]) / T          # BPTT through the T steps
            loss = F.cross_entropy(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f}, train {accuracy(net, xtr, ytr):.4f}, "
              f"test {accuracy(net, xte, yte):.4f} ({time.time() - start:.0f} s)", file=sys.stderr)
    recalibrate_batchnorm(net, xtr)
    print(f"BatchNorm statistics recomputed on the training set: train {accuracy(net, xtr, ytr):.4f}, "
          f"test {accuracy(net, xte, yte):.4f}", file=sys.stderr)
    folded = fold_batchnorm(net.eval())
    print(f"folded (BatchNorm-free) network: test accuracy {accuracy(folded, xte, yte):.4f} "
          f"on {len(xte)} samples, T = {T}; training took {time.time() - start:.0f} s", file=sys.stderr)
    torch.save(folded.state_dict(), args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
