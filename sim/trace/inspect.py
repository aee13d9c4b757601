"""A trace's metadata and per-layer spike statistics (``run_sim.py inspect``), as a JSON-ready
dict and as a terminal table."""

from __future__ import annotations


def inspect_trace(path: str, samples: int | None = None) -> dict:
    """The metadata and per-layer statistics of a trace, as a JSON-ready dict."""
    from sim.errors import ParameterError
    from sim.trace import open_trace
    from sim.trace.stats import layer_stats, network_spike_rate, rate_layers

    with open_trace(path) as tr:
        if samples is not None and not 1 <= samples <= tr.n_samples:
            raise ParameterError(path, "--samples", f"must be in 1..{tr.n_samples}, got {samples}")
        stats = layer_stats(tr, samples)   # spikes and levels, each row checked as it is read
        tr.verify(samples, events=False)   # and every other stored value: input, readout, weights
        m = tr.meta
        spiking = [s.name for s in stats if s.output == "spikes"]
        return {
            "trace": str(path),
            "format_version": tr.format_version,
            "checksums": tr.checksums, "twin_levels": m.twin_levels,
            "dynamics": m.dynamics or None,
            "model": m.model, "dataset": m.dataset, "T": m.T, "samples": m.n_samples,
            "samples_read": stats[0].samples, "input_shape": list(m.input_shape),
            "graph": not _is_chain(tr.layers), "twin": m.twin,
            "encoding": m.encoding, "neuron": m.neuron.to_dict(),
            "ann_activation_bits": m.ann_activation_bits, "weight_bits": m.weight_bits,
            "synthetic": m.synthetic, "recorder": m.recorder, "library_versions": m.library_versions,
            "description": m.description,
            "network_spike_rate": network_spike_rate(tr, stats),
            "network_spike_rate_layers": rate_layers(tr),
            "all_layers_spike_rate": network_spike_rate(tr, stats, spiking),
            "spike_count": sum(s.spike_count for s in stats),
            "layers": [s.to_row() for s in stats],
        }


def _is_chain(layers) -> bool:
    prev = "input"
    for l in layers:
        if tuple(l.inputs) != (prev,):
            return False
        prev = l.name
    return True


def _neuron_text(n: dict | None) -> str:
    if n is None:
        return "-"
    leak = f" leak={n['leak']}" if n["type"] == "LIF" else ""
    return f"{n['type']}{leak} th={n['threshold']:g} reset={n['reset']}"


def _fmt(x, pct=False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.2f}%" if pct else str(x)


def format_table(info: dict) -> str:
    lines = [
        f"trace    {info['trace']}",
        f"model    {info['model']}  dataset {info['dataset']}  T={info['T']}  samples={info['samples']}"
        f"{' (synthetic)' if info['synthetic'] else ''}",
        f"neuron   {_neuron_text(info['neuron'])}{' (default; per layer below)' if info['format_version'] >= 3 else ''}"
        f"  encoding={info['encoding']}  ANN bits={info['ann_activation_bits']}  weight bits={info['weight_bits']}",
        f"format   v{info['format_version']}{' (layer graph)' if info['graph'] else ''}  checksums: {info['checksums']}"
        f"  twin levels: {info['twin_levels']} (twin {info['twin']})"
        f"{'  dynamics: ' + info['dynamics'] if info.get('dynamics') else ''}",
    ]
    rows = info["layers"]
    w = max([10, *(len(r["name"]) for r in rows)])
    per_layer = info["format_version"] >= 3
    head = (f"{'layer':<{w}} {'kind':<8} {'input':<14} {'output':<14} {'fan-in':>7} {'spike rate':>10} {'density':>8} "
            f"{'spikes':>12}" + ("  inputs / neuron" if per_layer else ""))
    lines += ["", head, "-" * len(head)]
    for r in rows:
        shape_in = "x".join(map(str, r["input_shape"]))
        shape_out = "x".join(map(str, r["output_shape"]))
        extra = f"  {'+'.join(r['inputs'])} / {_neuron_text(r['neuron'])}" if per_layer else ""
        lines.append(f"{r['name']:<{w}} {r['kind']:<8} {shape_in:<14} {shape_out:<14} {r['fan_in']:>7} "
                     f"{_fmt(r['spike_rate'], True):>10} {_fmt(r['activation_density'], True):>8} "
                     f"{r['spike_count'] if r['output'] == 'spikes' else '-':>12}{extra}")
    lines += ["", f"network spike rate (paper: spiking outputs except layer 1): {_fmt(info['network_spike_rate'], True)}"
              f"   all spiking layers: {_fmt(info['all_layers_spike_rate'], True)}"
              f"   over {info['samples_read']} sample(s)"]
    return "\n".join(lines) + "\n"
