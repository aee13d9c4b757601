"""Synthetic traces: random ANN-twin levels at a target spike rate, with the exact IF spikes.

Levels are Binomial(T, rate) per neuron, so the expected spike rate is ``rate`` and the
activation density is 1 - (1 - rate)^T. Each neuron's spike train is what an IF neuron
(reset by subtraction) emits under the constant drive level/T, so the SNN/ANN-twin identity
(spike count over T == level) holds exactly, as in a recorded trace.
"""

from __future__ import annotations

import numpy as np

from sim import __version__
from sim.trace.schema import LayerSpec, NeuronModel, TraceMeta
from sim.trace.writer import TraceWriter, sample_bar


def if_spike_train(levels: np.ndarray, T: int, threshold: float = NeuronModel.threshold) -> np.ndarray:
    """Spikes bool [T, *levels.shape] of IF neurons driven by the constant current levels/T."""
    drive = levels.astype(np.float64) / T
    v = np.zeros_like(drive)
    out = np.zeros((T, *levels.shape), dtype=bool)
    for t in range(T):
        v += drive
        fired = v >= threshold
        v[fired] -= 1.0
        out[t] = fired
    return out


def or_pool(spikes: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """A max-pool's spikes: per step, the OR of its input spikes over each window (padding
    taps are no input). spikes: bool [T, C, H, W] -> bool [T, *layer.output_shape]."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    _, oh, ow = layer.output_shape
    T, c, h, w = spikes.shape
    padded = np.zeros((T, c, h + 2 * ph + kh, w + 2 * pw + kw), dtype=bool)
    padded[:, :, ph:ph + h, pw:pw + w] = spikes
    out = np.zeros((T, c, oh, ow), dtype=bool)
    for ky in range(kh):
        for kx in range(kw):
            out |= padded[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
    return out


def _input_spikes(rng, encoding: str, rate, T: int, input_shape) -> tuple[np.ndarray | None, np.ndarray]:
    """(analog input or None, input spikes bool [T, *input_shape]) of a rate or event encoding."""
    if encoding == "rate":
        x = rng.random(input_shape)
        return x, rng.random((T, *input_shape)) < x
    r_in = rate.get("input", 0.1) if isinstance(rate, dict) else rate
    return None, rng.random((T, *input_shape)) < r_in


def write_synthetic_trace(path, layers: list[LayerSpec], input_shape, *, model: str, T: int,
                          n_samples: int, rate: float | dict[str, float], seed: int = 0,
                          with_weights: bool = True, dataset: str = "synthetic",
                          snn_only: bool | None = None, encoding: str = "direct", progress: bool = False) -> None:
    """Write a synthetic trace; ``rate`` is one spike rate or one per spiking layer name.

    ``encoding``: ``direct`` (the analog input drives the first layers), ``rate`` (input spikes
    Bernoulli(pixel) per step from the stored analog input in [0, 1)) or ``events`` (an event
    stream: input spikes Bernoulli(rate) per element and step, no analog input stored).
    A max-pool's spikes are the OR of its input's over each window (not drawn). ``snn_only``
    stores no ANN-twin levels (twin_levels derived: the twin is the QNN of spike counts);
    None: SNN-only exactly when a layer's neuron is not IF with reset by subtraction (a LIF
    trace), whose spike counts the stored-twin identity does not cover.
    The writer refuses (TraceFormatError naming the field) what the reader would reject
    before writing anything, and verifies the file with the reader before it is moved into
    place. Samples are drawn and written one at a time (memory flat in ``n_samples``);
    ``progress``: a bar on stderr for the writing and the verification passes."""
    rng = np.random.default_rng(seed)
    if snn_only is None:
        snn_only = any(l.neuron is not None and (l.neuron.type, l.neuron.reset) != ("IF", "subtract")
                       for l in layers)
    models = {l.neuron for l in layers if l.neuron is not None}
    meta = TraceMeta(model=model, dataset=dataset, T=T, n_samples=n_samples, input_shape=input_shape,
                     neuron=models.pop() if len(models) == 1 else NeuronModel(),
                     synthetic=True, recorder=f"sim.trace.synthetic {__version__}",
                     library_versions={"numpy": np.__version__},
                     description=f"synthetic: Binomial(T, rate) levels, rate={rate}, seed={seed}",
                     twin_levels="derived" if snn_only else "spike_counts", encoding=encoding)
    with TraceWriter(path, meta, layers, with_input=encoding != "events", progress=progress) as w:
        layers = w.layers   # the graph filled in (inputs, neuron models)
        if with_weights:
            for layer in layers:
                if layer.n_weights:
                    w.set_weights(layer.name, rng.integers(-127, 128, size=layer.weight_shape),
                                  scale=1.0 / 127, bias=rng.normal(0, 0.01, layer.output_shape[0]))
        passthrough = {l.name: l.inputs[0] for l in layers if l.output == "passthrough"}
        bar = sample_bar(n_samples, "synth", progress)
        for i in range(n_samples):
            spikes, acts, pots = {}, {}, {}
            if encoding != "direct":   # drawn first: a max-pool may read the input spikes
                x, in_spikes = _input_spikes(rng, encoding, rate, T, input_shape)
                spikes["input"] = in_spikes
            for layer in layers:
                if layer.kind == "maxpool":
                    src = layer.inputs[0]
                    while src in passthrough:
                        src = passthrough[src]
                    s = or_pool(spikes[src].reshape(T, *layer.input_shape), layer)
                    spikes[layer.name] = s
                    if not snn_only:
                        acts[layer.name] = s.sum(axis=0).astype(np.uint8 if T < 256 else np.uint16)
                elif layer.output == "spikes":
                    r = rate[layer.name] if isinstance(rate, dict) else rate
                    levels = rng.binomial(T, r, size=layer.output_shape).astype(np.uint8 if T < 256 else np.uint16)
                    if not snn_only:
                        acts[layer.name] = levels
                    spikes[layer.name] = if_spike_train(levels, T)
                elif layer.output == "potential":
                    pots[layer.name] = rng.normal(0, 1, layer.output_shape)
            if encoding == "direct":   # drawn after the layers, as before: the same traces as ever
                x, in_spikes = rng.random(input_shape), None
            w.write_sample(i, label=int(rng.integers(0, 10)), input=x,
                           input_spikes=in_spikes,
                           spikes=spikes, activations=acts, potentials=pots, ann_outputs=pots)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
