"""The paper's averages against counted truth.

The v1 model (:mod:`sim.analytic.paper_v1`) prices one synapse with network-wide averages:
one sparsity s, one ANN density ρ, one weight reuse R, one fan-in N. Given a trace, this
module puts the v1 E_SNN/E_ANN (the table's R, N, ρ and the trace's network sparsity, the
way the paper applies it) next to the simulated ratio priced with the same constants
(``paper_v1_45nm``), and recomputes the v1 ratio with each average replaced, one at a time,
by the trace's true value, so the error can be read average by average.

"Per synapse" means what the v1 model means: a tap of a layer's dense fan-in (D = Σ neurons ×
fan-in over the compute layers, pooling included). True values:

- spike events per synapse per step r = E / (n·T·D), which splits into the network's
  neuron-average rate r_net (the paper's s = 1 − r_net) times three factors:
  non-uniform rates over layers and neurons (E weighted by fan-out, r_fan / r_net),
  padding borders (a border input has fewer than a dense fan-in's taps: Σ fan-out / D over the
  spike-driven layers) and the direct-encoded layer 1 (its synapses see the analog image, not
  spikes: D_spiking / D);
- ANN density ρ = M / (n·D): zero-skipping MACs per synapse (borders included);
- weight reuse R = D / W (synapses per stored weight); fan-in N = D / neurons.

Non-uniform spikes over time steps change no count of these architectures (every count is
linear in the totals), only cycles; their spread is reported as information.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.arch.energy import PAPER_V1_TABLE as V1_TABLE


def trace_averages(trace, stats) -> dict:
    """The trace's true values of the v1 model's averages, and the factors they split into."""
    from sim.analytic.layer_stats import compute_layers, input_fanout
    from sim.trace.stats import rate_layers

    all_layers = compute_layers(trace.layers)
    n, T = stats[0].samples, trace.T
    # the v1 model's synapses: conv2d, linear and avgpool (its fixed-weight sums); a graph's
    # residual adds and max-pool compares are not synapses of the model
    pairs = [(l, s) for l, s in zip(all_layers, stats) if l.kind in ("conv2d", "linear", "avgpool")]
    rate_stats = stats
    layers, stats = [l for l, _ in pairs], [s for _, s in pairs]
    D = sum(l.dense_macs for l in layers)
    fan = {l.name: int(input_fanout(l).sum()) for l in layers}
    spk = [(l, s) for l, s in zip(layers, stats) if not s.analog_input]
    d_spk = sum(l.dense_macs for l, _ in spk)
    fan_spk = sum(fan[l.name] for l, _ in spk)
    E = sum(int(s.synaptic_events) for s in stats)
    counted = set(rate_layers(trace))
    rl = [(l, s) for l, s in zip(all_layers, rate_stats) if l.name in counted]
    r_net = sum(int(s.spikes_out) for _, s in rl) / (n * T * sum(l.n_neurons for l, _ in rl)) if rl else 0.0
    r_fan = E / (n * T * fan_spk) if fan_spk else 0.0
    per_step = np.sum([s.per_step["spikes_out"] for s in rate_stats if s.per_step], axis=0)
    convs = [l for l in layers if l.kind == "conv2d"]
    return {
        "samples": n, "T": T, "synapses_dense": D, "weights": sum(l.n_weights for l in layers),
        "neurons": sum(l.n_neurons for l in layers), "synaptic_events": E,
        "s_network": 1.0 - r_net, "rate_network": r_net,
        "rate_fanout_weighted": r_fan,
        "factor_nonuniform": r_fan / r_net if r_net else 1.0,
        "factor_borders": fan_spk / d_spk if d_spk else 1.0,
        "factor_layer1_direct": d_spk / D if D else 1.0,
        "rate_per_synapse": E / (n * T * D) if D else 0.0,
        "rho_per_synapse": sum(s.ann_macs for s in stats) / (n * D) if D else 0.0,
        "rho_inputs": sum(s.ann_nonzero_inputs for s in stats) / (n * sum(l.n_inputs for l in layers)),
        "R": D / max(1, sum(l.n_weights for l in layers)),
        "R_paper_style": (float(np.mean([l.output_shape[1] * l.output_shape[2] for l in convs]))
                          if convs else None),
        "N": D / sum(l.n_neurons for l in layers),
        "spikes_per_step": [int(x) for x in np.atleast_1d(per_step)],
        "spikes_per_step_cv": (float(np.std(per_step) / np.mean(per_step))
                               if np.size(per_step) and np.mean(per_step) else 0.0),
    }


def _sim_energies(reports: list[dict], table) -> dict[tuple[str, str], float]:
    """Counted energy (pJ) per (architecture, mode), priced with ``table``."""
    from sim.report import reprice

    e = {}
    for r in reports:
        if r["energy_table"] != table.name:
            r = reprice(r, table)
        e[(r["arch"]["architecture"], r["mode"])] = r["energy_pj"]["total"]
    return e


def paper_comparison(trace, stats, reports: list[dict], nonideal_pj: dict | None = None) -> dict:
    """The ``paper_v1`` section: per v1 architecture the v1 ratio, the simulated one, and the
    v1 ratio with each average replaced by the trace's value (one at a time, then all).
    ``nonideal_pj``: ``{(architecture, mode): pJ}`` of the named non-ideal terms priced with
    the v1 table, to split what the averages leave over into those terms and the rest."""
    from sim.analytic import paper_v1 as v1
    from sim.arch.energy import load_energy_table

    table = load_energy_table(V1_TABLE)
    c = v1.V1Constants.from_table(table)
    a = trace_averages(trace, stats)
    T, r0 = trace.T, a["rate_network"]
    sim_e = _sim_energies(reports, table)
    sim = {a: sim_e[(a, "snn")] / sim_e[(a, "ann")] for a, m in sim_e if m == "snn" and sim_e.get((a, "ann"))}
    subs = [
        ("nonuniform_spikes", "s", "spike rates not uniform over layers and neurons (fan-out weighted)",
         {"s": 1 - r0 * a["factor_nonuniform"]}),
        ("padding_borders", "s", "padding taps of a dense fan-in carry no spikes",
         {"s": 1 - r0 * a["factor_borders"]}),
        ("layer1_direct_encoding", "s", "layer 1 sees the analog image, not spikes",
         {"s": 1 - r0 * a["factor_layer1_direct"]}),
        ("spike_events_per_synapse", "s", "all three: the trace's spike events per synapse per step",
         {"s": 1 - a["rate_per_synapse"]}),
        ("ann_density", "rho", "the ANN twin's non-zero MACs per synapse", {"rho": a["rho_per_synapse"]}),
        ("weight_reuse", "R", "synapses per stored weight", {"R": a["R"]}),
        ("fan_in", "N", "synapses per neuron", {"N": a["N"]}),
    ]
    out = {"energy_table": table.name, "averages": a,
           "paper_constants": {"R": c.R, "N": c.N, "rho": c.rho},
           "time_steps_note": "non-uniform spikes over time steps change no count (counts are linear in "
                              "the totals); they change cycles only",
           "architectures": {}}
    for arch in v1.ARCHITECTURES:
        if arch not in sim:
            continue

        def ratio(s=1 - r0, **kw):
            return v1.ratio(arch, replace(c, **kw), min(1.0, max(0.0, s)), T)

        base, got = ratio(), sim[arch]
        err = got - base
        rows = []
        for name, symbol, what, kw in subs:
            x = ratio(**kw)
            rows.append({"name": name, "symbol": symbol, "what": what, "value": next(iter(kw.values())),
                         "ratio": x, "change": x - base, "share_of_error": (x - base) / err if err else None})
        every = ratio(s=1 - a["rate_per_synapse"], rho=a["rho_per_synapse"], R=a["R"], N=a["N"])
        remaining = {"value": got - every,
                     "what": "per-event costs the averages do not capture: the simulator's counted accesses "
                             "(register files, buffers) against c_syn and e_mem per operand, layer 1's "
                             "analog input, the readout, and any non-ideal terms (spills, folds, hops)"}
        if nonideal_pj is not None and (arch, "snn") in nonideal_pj:
            e_s, e_a = sim_e[(arch, "snn")], sim_e[(arch, "ann")]
            ideal = (e_s - nonideal_pj[(arch, "snn")]) / (e_a - nonideal_pj[(arch, "ann")])
            remaining.update({"simulated_ideal_ratio": ideal, "nonideal_terms": got - ideal,
                              "per_event_costs": ideal - every})
        out["architectures"][arch] = {
            "v1_ratio": base, "simulated_ratio": got, "error": base - got,
            "relative_error": (base - got) / got if got else None,
            "substitutions": rows,
            "all_true_averages": {"ratio": every, "change": every - base,
                                  "share_of_error": (every - base) / err if err else None},
            "remaining": remaining,
        }
    return out
