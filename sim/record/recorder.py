"""Record traces: forward hooks on the converted SNN and its ANN twin, written as sim.trace files.

Per spiking layer and sample the trace holds the SNN's output spikes bool [T, *out] and the
twin's integer Q_T level per neuron (0..T, uint8), so popcount over T == level; the readout
layer holds the SNN potential summed over T and the twin's logits; ``input`` holds the analog
(direct-encoded) input; labels are the true classes; every conv/linear layer stores its int8
BN-folded weights, scale and float32 bias, exactly the values both networks ran with.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from sim import __version__
from sim.record.convert import Converted, EquivalentNet
from sim.record.data import Split
from sim.trace.schema import NeuronModel, TraceMeta
from sim.trace.writer import TraceWriter, sample_bar

RECORDER = f"sim.record {__version__}"


class EventHooks:
    """Forward hooks that keep each layer's input and output events of the last forward pass.

    ``inputs[name]`` / ``outputs[name]``: for the SNN, spikes [T, B, ...] (the first layer's
    input is the analog [B, ...]), for the twin, levels [B, ...]; the readout's output is the
    summed potential (SNN) or the logits (twin).
    """

    def __init__(self, net: EquivalentNet):
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = [layer.register_forward_hook(self._hook(name)) for name, layer in net.layers.items()]

    def _hook(self, name: str):
        def hook(module, args, output):
            self.inputs[name] = args[0]
            self.outputs[name] = output
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "EventHooks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def library_versions() -> dict[str, str]:
    import h5py

    return {"torch": torch.__version__, "numpy": np.__version__, "h5py": h5py.__version__}


@dataclass
class RecordResult:
    path: str
    samples: int
    seconds: float            # wall time of simulation + writing the samples (weights excluded)
    weight_seconds: float     # one-off: compressing and writing the int8 weights
    cpu_seconds: float        # process CPU time (all threads) for the samples, weights excluded
    snn_correct: int          # readout argmax == label over the recorded samples
    ann_correct: int

    @property
    def seconds_per_sample(self) -> float:
        return self.seconds / self.samples


@torch.no_grad()
def record_trace(conv: Converted, data: Split, n_samples: int, out_path, *, dataset: str,
                 batch_size: int = 16, description: str = "", progress: bool = True) -> RecordResult:
    """Run the first ``n_samples`` of ``data`` through the SNN and the twin and write a trace.

    The writer refuses a trace the reader would reject before writing (TraceFormatError) and
    runs the reader's full validation on the file before moving it into place, so a trace
    this returns for is one ``inspect`` and ``replay`` accept; on failure nothing is left.
    Samples are written batch by batch as they are simulated (memory flat in ``n_samples``);
    ``progress``: bars (samples/s, ETA) on stderr for recording and the verification pass."""
    n = min(n_samples, len(data))
    specs = conv.specs
    meta = TraceMeta(model=conv.name, dataset=dataset, T=conv.T, n_samples=n,
                     input_shape=tuple(data.x.shape[1:]), neuron=NeuronModel(threshold=conv.theta),
                     encoding="direct", weight_bits=conv.weight_bits, synthetic=False, recorder=RECORDER,
                     library_versions=library_versions(), description=description,
                     # window dynamics make count == level exact (docs/recording.md); causal ones do not
                     twin_levels="spike_counts" if conv.dynamics == "window" else "independent",
                     dynamics=conv.dynamics)
    t0, c0 = time.perf_counter(), time.process_time()
    snn_ok = ann_ok = 0
    with TraceWriter(out_path, meta, specs, progress=progress) as w, EventHooks(conv.snn) as hs, \
            EventHooks(conv.twin) as ha:
        for q in conv.layers:
            if q.weight is not None:
                w.set_weights(q.spec.name, q.weight.numpy(), q.scale, q.bias.numpy())
        t_weights, c_weights = time.perf_counter() - t0, time.process_time() - c0
        bar = sample_bar(n, "record", progress)
        for start in range(0, n, batch_size):
            x, y = data.x[start:min(n, start + batch_size)], data.y[start:min(n, start + batch_size)]
            pot = conv.snn(x)
            logits = conv.twin(x)
            snn_ok += int((pot.argmax(1) == y).sum())
            ann_ok += int((logits.argmax(1) == y).sum())
            for b in range(len(y)):
                spikes, acts, pots, anns = {}, {}, {}, {}
                for spec in specs:
                    if spec.output == "spikes":
                        spikes[spec.name] = hs.outputs[spec.name][:, b].numpy()
                        acts[spec.name] = ha.outputs[spec.name][b].numpy()
                    elif spec.output == "potential":
                        pots[spec.name] = hs.outputs[spec.name][b].numpy()
                        anns[spec.name] = ha.outputs[spec.name][b].numpy()
                w.write_sample(start + b, label=int(y[b]), input=x[b].numpy(), spikes=spikes,
                               activations=acts, potentials=pots, ann_outputs=anns)
            if bar is not None:
                bar.update(len(y))
        if bar is not None:
            bar.close()
    # the file is closed (flushed, renamed) above; that time counts to the samples
    return RecordResult(str(out_path), n, time.perf_counter() - t0 - t_weights, t_weights,
                        time.process_time() - c0 - c_weights, snn_ok, ann_ok)


@dataclass
class Accuracy:
    samples: int
    snn: float
    ann: float
    spike_rate: float   # the paper's definition, from the SNN's spikes


@torch.no_grad()
def evaluate_converted(conv: Converted, data: Split, batch_size: int = 64, progress: bool = True) -> Accuracy:
    """Test accuracy of the converted SNN (readout argmax) and the ANN twin, and the SNN's spike rate."""
    from tqdm import tqdm

    spiking = [s.name for s in conv.specs if s.output == "spikes"]
    rate_names = spiking[1:] if spiking and spiking[0] == conv.specs[0].name else spiking
    snn_ok = ann_ok = 0
    spikes = neurons = 0
    with EventHooks(conv.snn) as hs:
        for start in tqdm(range(0, len(data), batch_size), desc="evaluate", file=sys.stderr,
                          disable=None if progress else True, leave=False):
            x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            snn_ok += int((conv.snn(x).argmax(1) == y).sum())
            ann_ok += int((conv.twin(x).argmax(1) == y).sum())
            for name in rate_names:
                s = hs.outputs[name]
                spikes += int(s.sum())
                neurons += s.numel()
    n = len(data)
    return Accuracy(n, snn_ok / n, ann_ok / n, spikes / neurons if neurons else 0.0)
