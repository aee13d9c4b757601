"""memory_hierarchy on layer graphs: residual adds, max pooling, LIF leak, live shortcut tensors.

(a) the counts of every add and max-pool layer equal plain-Python enumeration of the trace's
spikes and levels; (b) a LIF trace costs exactly N·T leak ops per LIF layer more than the same
spikes declared IF, and nothing else moves; (c) the closed form equals the simulator on graph
traces in both modes, with everything resident and with small buffers (live tensors spilled);
(d) a residual shortcut live across its block spills when the buffer cannot hold it beside
the block's events, and not when it can; (e) under rate or event encoding the stored input
spikes (SNN) or the twin's input levels (ANN) are read from DRAM into the buffer once per
sample by each layer that reads them, and the plan holds them as events; (f) a current layer
(output ``current``) integrates without a neuron update and writes N values per step that its
add reads and adds, held as events until then; closed form == simulator, validate --ideal exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.analytic import memory_hierarchy as mh
from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.errors import ParameterError
from sim.mapping.encoding import address_bits
from sim.mapping.memory_hierarchy import held_bits
from sim.replay import replay
from sim.report.pricing import price
from sim.trace import open_trace
from sim.trace.schema import NeuronModel
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace
from sim.validation.compare import run_validation

from analytic_helpers import assert_matches_report, stored_input_reads, write_spike_input_traces
from conftest import REPO

ARCH = "memory_hierarchy"
IF_TRACE = REPO / "traces" / "tiny_resnet_T4.h5"      # IF, recorded twin
LIF_TRACE = REPO / "traces" / "tiny_resnet_lif_T4.h5"  # LIF leak 0.5 reset zero, derived twin
HUGE = "components.global_buffer.capacity_bytes=1073741824"
TABLE = load_energy_table("horowitz_45nm")


def _layer(report, name):
    return next(l for l in report["layers"] if l["name"] == name)


@pytest.fixture(scope="module")
def reports():
    """Both modes of both bundled graph traces on the default spec (everything fits)."""
    out = {}
    for path in (IF_TRACE, LIF_TRACE):
        with open_trace(path) as tr:
            for rep in replay(tr, ARCH, ["snn", "ann"], "paper_v1_45nm", progress=False):
                out[(path.name, rep["mode"])] = rep
    return out


# --- (a) add and max-pool counts against brute-force enumeration -------------------------------
def _operand_spikes(tr, layer, i):
    """Per operand of ``layer``, its spikes bool [T, C, H, W] on sample i (plain reads)."""
    return [tr.spikes(s.name, i).reshape(tr.T, *layer.input_shape) for s in tr.sources(layer.name)]


def _operand_levels(tr, layer, i):
    return [tr.activations(s.name, i).reshape(layer.input_shape) for s in tr.sources(layer.name)]


def _pool_taps(layer):
    """Every (c, oy, ox, iy, ix) of a pooling window that lands on an input pixel."""
    c, h, w = layer.input_shape
    _, oh, ow = layer.output_shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    taps = []
    for ch in range(c):
        for oy in range(oh):
            for ox in range(ow):
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
                        if 0 <= iy < h and 0 <= ix < w:
                            taps.append((ch, oy, ox, iy, ix))
    return taps


def _brute(tr, layer):
    """S, E, F (SNN) and nnz, ops (ANN) of an add or max-pool over every sample, counted
    element by element: an add's operand spike is one event, a max-pool's input spike is
    one OR per window covering it; the twin reads non-zero operand levels, or compares each
    non-zero input once per window covering it."""
    S = E = F = nnz = ops = 0
    taps = _pool_taps(layer) if layer.kind == "maxpool" else None
    for i in range(tr.n_samples):
        spikes, levels = _operand_spikes(tr, layer, i), _operand_levels(tr, layer, i)
        for sp, lv in zip(spikes, levels):
            S += int(sp.sum())
            nnz += int(np.count_nonzero(lv))
            if taps is None:
                E += int(sp.sum())
                ops += int(np.count_nonzero(lv))
            else:
                for ch, _, _, iy, ix in taps:
                    E += int(sp[:, ch, iy, ix].sum())
                    ops += int(lv[ch, iy, ix] != 0)
        F += int(tr.spikes(layer.name, i).sum())
    return S, E, F, nnz, ops


def _expected(tr, layer, mode, rows=16):
    """Every count of an add or max-pool layer on the default spec (nothing spills)."""
    S, E, F, nnz, ops = _brute(tr, layer)
    n, T, N = tr.n_samples, tr.T, layer.n_neurons
    cp = -(-layer.output_shape[0] // rows)
    out = {"dram.weight_read": 0, "global_buffer.weight_write": 0, "dram.spill_write": 0, "dram.spill_read": 0}
    if mode == "ann":
        op = "pe_array.compare" if layer.kind == "maxpool" else "pe_array.add"
        out.update({"global_buffer.weight_read": 0, "global_buffer.input_read": nnz * cp, op: ops,
                    "register_file.input_read": ops, "register_file.psum_read": ops,
                    "register_file.psum_write": ops, "global_buffer.output_write": n * N})
        if layer.kind == "add":  # quantise each output; a max-pool's levels pass through
            out["pe_array.compare"] = n * N
        return out
    out["global_buffer.spike_read"] = S * cp
    out["global_buffer.spike_write"] = F
    if layer.kind == "maxpool":  # stateless: one 1-bit OR per event, no membrane
        out["pe_array.compare"] = E
        return out
    steps = n * T * N
    out.update({"dram.membrane_read": 0, "dram.membrane_write": 0, "register_file.membrane_read": E + steps,
                "pe_array.add": E + F, "register_file.membrane_write": E + F, "pe_array.compare": steps,
                "global_buffer.membrane_read": steps, "global_buffer.membrane_write": steps})
    if layer.neuron.leaks:
        out["pe_array.leak"] = steps
    return out


@pytest.mark.parametrize("path", [IF_TRACE, LIF_TRACE], ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_each_add_and_maxpool_layer_counts_exactly_its_enumerated_events(reports, path, mode):
    rep = reports[(path.name, mode)]
    with open_trace(path) as tr:
        layers = [l for l in tr.layers if l.kind in ("add", "maxpool")]
        assert {l.kind for l in layers} == {"add", "maxpool"}
        for layer in layers:
            got = _layer(rep, layer.name)
            assert got["counts"] == _expected(tr, layer, mode), layer.name
            S, E, F, _, ops = _brute(tr, layer)
            totals = got["totals"]
            if layer.kind == "maxpool":
                assert totals["compares"] == (E if mode == "snn" else ops)
                assert totals["neuron_updates"] == totals["adds"] == totals["macs"] == 0
                # the OR is one bit; the twin compares levels at the activation width
                act_bits = load_arch_spec(ARCH).data.ann_bits(trace_activation_bits(tr))
                assert got["bits"]["pe_array.compare"] == (1 if mode == "snn" else act_bits)
            else:
                assert totals["adds"] == (E if mode == "snn" else ops)
                assert totals["compares"] == totals["macs"] == totals["synaptic_ops"] == 0
                updates = tr.n_samples * layer.n_neurons * (tr.T if mode == "snn" else 1)
                assert totals["neuron_updates"] == updates
            if mode == "snn":
                assert (totals["spikes_in"], totals["spikes_out"]) == (S, F)
                # an address names a position within the operand the spike comes from
                operand = layer.n_inputs // layer.n_operands
                assert got["bits"]["global_buffer.spike_read"] == max(1, (operand - 1).bit_length())


def test_a_shortcut_feeding_two_layers_is_written_once_and_read_by_each(reports):
    rep = reports[(IF_TRACE.name, "snn")]
    with open_trace(IF_TRACE) as tr:
        fired = sum(int(tr.spikes("s1b1_add", i).sum()) for i in range(tr.n_samples))
        readers = [l.name for l in tr.consumers("s1b1_add")]
    assert readers == ["s2b1_conv1", "s2b1_down"]
    assert _layer(rep, "s1b1_add")["counts"]["global_buffer.spike_write"] == fired
    for name in readers:  # each reader's channel passes read every spike: 8 channels, one pass
        assert _layer(rep, name)["counts"]["global_buffer.spike_read"] == fired


# --- (b) LIF = IF + N·T leak ops per LIF layer ------------------------------------------------
@pytest.fixture(scope="module")
def if_lif_traces(tmp_path_factory):
    """The same spikes (same seed and rate) declared IF and LIF, both with the derived twin."""
    d = tmp_path_factory.mktemp("lif")
    out = {}
    for kind, neuron in (("IF", None), ("LIF", NeuronModel("LIF", 1.0, "zero", 0.5))):
        layers, shape = model_layers("tiny_resnet", 3, neuron=neuron)
        out[kind] = d / f"{kind}.h5"
        write_synthetic_trace(out[kind], layers, shape, model="tiny_resnet", T=3, n_samples=2, rate=0.25,
                              seed=11, with_weights=False, snn_only=True)
    return out


@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_a_lif_trace_costs_exactly_n_t_leak_ops_more_than_the_same_trace_declared_if(if_lif_traces, mode):
    reps = {}
    for kind, path in if_lif_traces.items():
        with open_trace(path) as tr:
            (reps[kind],) = replay(tr, ARCH, [mode], TABLE.path, progress=False)
            leaky = {l.name: l.n_neurons for l in tr.layers if l.neuron is not None and l.neuron.leaks}
            if kind == "LIF":
                lif, T, n = leaky, tr.T, tr.n_samples
            else:
                assert leaky == {}
    # every neuron layer leaks, the readout too; the max-pool has no neuron
    assert "fc1" in lif and "s1b1_add" in lif and "maxpool" not in lif
    spec = load_arch_spec(ARCH)
    comps = {c: {"class": s.cls, "capacity_bytes": s.capacity_bytes} for c, s in spec.components.items()}
    mb = spec.data.membrane_bits
    for a, b in zip(reps["IF"]["layers"], reps["LIF"]["layers"]):
        leak = n * T * lif[a["name"]] if mode == "snn" and a["name"] in lif else 0
        expected = dict(a["counts"], **({"pe_array.leak": leak} if leak else {}))
        assert b["counts"] == expected, a["name"]
        assert b["totals"] == a["totals"], a["name"]
        if leak:  # one leak per neuron per step, at the membrane width, priced by the table
            assert b["bits"]["pe_array.leak"] == mb
            cost = price({"pe_array.leak": leak}, {"pe_array.leak": mb}, comps, TABLE)["pe_array.leak"]
            assert cost > 0
            assert b["energy_pj"] - a["energy_pj"] == pytest.approx(cost, rel=1e-9)
        else:
            assert b["energy_pj"] == a["energy_pj"]
    leaks = reps["LIF"]["counts"].get("pe_array.leak", 0)
    assert leaks == (n * T * sum(lif.values()) if mode == "snn" else 0)


# --- (c) closed form == simulator on graphs ----------------------------------------------------
SPECS = {
    "resident": [HUGE],
    "resident_time_major": [HUGE, "mapping.loop_order=time_major"],
    "dense": [HUGE, "mapping.zero_skipping=false", "components.pe_array.rows=3", "components.pe_array.cols=2"],
    "small": ["components.global_buffer.capacity_bytes=80"],
    "small_time_major": ["components.global_buffer.capacity_bytes=72", "mapping.loop_order=time_major"],
    "small_tiled": ["components.global_buffer.capacity_bytes=280", "mapping.snn_weight_tiling=true"],
}


def _predict(tr, opts, mode, ideal=False):
    spec = load_arch_spec(ARCH, opts)
    return mh.predict(spec, tr.layers, trace_event_stats(tr), tr.T, mode, trace_activation_bits(tr), TABLE, ideal)


@pytest.mark.parametrize("path", [IF_TRACE, LIF_TRACE], ids=lambda p: p.stem)
@pytest.mark.parametrize("name", list(SPECS))
def test_the_closed_form_equals_the_simulator_on_graph_traces(path, name):
    opts = SPECS[name]
    with open_trace(path) as tr:
        try:
            reps = replay(tr, ARCH, ["snn", "ann"], TABLE.path, overrides=opts, progress=False)
        except ParameterError as refused:  # both refuse a spec alike
            with pytest.raises(ParameterError) as closed_form:
                _predict(tr, opts, "snn")
            assert str(closed_form.value) == str(refused)
            pytest.fail(f"{name} should run: {refused}")
        causes = set()
        for rep in reps:
            pred = _predict(tr, opts, rep["mode"])
            assert_matches_report(pred, rep)
            ideal = _predict(tr, opts, rep["mode"], ideal=True)
            for p, r, i in zip(pred.layers, rep["layers"], ideal.layers):
                assert p.ideal_counts == i.counts
                extra = {k: sum(c.values()) for k, c in p.nonideal_terms().items()}
                assert {k: n - i.counts[k] for k, n in r["counts"].items() if n != i.counts[k]} == extra
                causes |= {c for cs in p.nonideal_terms().values() for c in cs}
    assert causes <= NONIDEAL_CAUSES
    if name.startswith("resident") or name == "dense":
        assert causes == set()
    elif name == "small_time_major":  # one step of events fits; weights and membranes do not
        assert {"weights_refetched_per_step_nonresident", "membranes_per_step_nonresident"} <= causes
    else:  # the small buffers spill events (the ANN's, under tiling), live shortcuts among them
        assert "io_events_spilled" in causes


def test_the_ideal_overrides_make_a_graph_fully_resident(tmp_path):
    path = tmp_path / "resnet18.h5"
    layers, shape = model_layers("resnet18", 2, maxpool=True)
    write_synthetic_trace(path, layers, shape, model="resnet18", T=2, n_samples=1, rate=0.1, seed=2,
                          with_weights=False)
    with open_trace(path) as tr:
        base = load_arch_spec(ARCH)
        forced = mh.ideal_overrides(base, tr.layers, tr.T, trace_activation_bits(tr))
        assert forced
        for rep in replay(tr, ARCH, ["snn", "ann"], TABLE.path, overrides=forced, progress=False):
            pred = _predict(tr, forced, rep["mode"])
            assert_matches_report(pred, rep)
            assert not any(l.nonideal_terms() for l in pred.layers)


# --- (d) a shortcut live across its block ------------------------------------------------------
def _spill(cap_bytes, mode="snn"):
    with open_trace(IF_TRACE) as tr:
        (rep,) = replay(tr, ARCH, [mode], "paper_v1_45nm",
                        overrides=[f"components.global_buffer.capacity_bytes={cap_bytes}"], progress=False)
        return tr, {l["name"]: l["counts"]["dram.spill_write"] for l in rep["layers"]}


def test_a_residual_shortcut_live_across_its_block_spills_only_when_it_does_not_fit():
    with open_trace(IF_TRACE) as tr:
        T, n = tr.T, tr.n_samples
        conv1, conv2, short = (tr.layer(x) for x in ("s1b1_conv1", "s1b1_conv2", "maxpool"))
    assert [s.name for s in tr.sources("s1b1_add")] == ["s1b1_conv2", "maxpool"]
    # layer_major SNN: a layer holds one bit per input and output neuron per step, T steps
    own = T * (conv2.n_inputs + conv2.n_neurons)
    live = T * short.n_neurons  # the max-pool's output waits for s1b1_add while s1b1_conv2 runs
    assert own == T * (conv1.n_inputs + conv1.n_neurons) == 512 and live == 256
    _, tight = _spill(80)    # 640 bits: the block's own events fit, the shortcut beside them does not
    _, roomy = _spill(96)    # 768 bits: both fit
    assert tight["s1b1_conv2"] == n * (own + live - 640) == n * 128
    assert tight["s1b1_conv1"] == 0  # it reads the shortcut: held as its input, not twice
    assert roomy["s1b1_conv2"] == roomy["s1b1_conv1"] == 0


# --- (e) stored input spikes (rate / event encoding) come on chip from DRAM ---------------------
@pytest.fixture(scope="module")
def spike_input_traces(tmp_path_factory):
    return write_spike_input_traces(tmp_path_factory.mktemp("spike_input"))


@pytest.mark.parametrize("model", ["tiny_resnet", "tiny", "input_add"])
def test_stored_input_spikes_are_read_from_dram_into_the_buffer_once_per_sample(spike_input_traces, model):
    with open_trace(spike_input_traces[model]) as tr:
        reps = {r["mode"]: r for r in replay(tr, ARCH, ["snn", "ann"], "paper_v1_45nm", progress=False)}
        readers = {l.name: stored_input_reads(tr, l.name) for l in tr.layers
                   if l.output != "passthrough" and None in tr.sources(l.name)}
        operand = {l.name: l.n_inputs // l.n_operands for l in tr.layers}
    ab = reps["ann"]["extra"]["ann_activation_bits"]
    assert readers and (model != "input_add" or len(readers) == 2)  # each reader reads it
    for mode, rep in reps.items():
        for layer in rep["layers"]:
            c, b, name = layer["counts"], layer["bits"], layer["name"]
            if name not in readers:  # nothing else enters from DRAM as input
                assert "dram.spike_read" not in c and "dram.input_read" not in c, name
                continue
            spikes, levels = readers[name]
            if mode == "snn":  # each input spike, at an address within the input
                assert c["dram.spike_read"] == c["global_buffer.input_write"] == spikes > 0
                assert b["dram.spike_read"] == b["global_buffer.input_write"] == address_bits(operand[name])
                assert "dram.input_read" not in c
            else:  # the twin's input levels, dense like the image
                assert c["dram.input_read"] == c["global_buffer.input_write"] == levels
                assert b["dram.input_read"] == b["global_buffer.input_write"] == ab


def test_the_residency_plan_holds_the_stored_input_spikes_as_events(spike_input_traces):
    spec = load_arch_spec(ARCH)
    with open_trace(spike_input_traces["tiny_resnet"]) as tr:
        T, n_in, ab = tr.T, tr.layer("conv1").n_inputs, spec.data.ann_bits(trace_activation_bits(tr))
        for loop, steps in (("layer_major", T), ("time_major", 1)):
            direct = held_bits(tr.layers, "snn", T, loop, ab, spec.data.input_bits)
            spikes = held_bits(tr.layers, "snn", T, loop, ab, spec.data.input_bits, spike_input=True)
            assert [s - d for s, d in zip(spikes, direct)] == [steps * n_in] + [0] * (len(direct) - 1)
        direct = held_bits(tr.layers, "ann", T, "layer_major", ab, spec.data.input_bits)
        levels = held_bits(tr.layers, "ann", T, "layer_major", ab, spec.data.input_bits, spike_input=True)
        assert levels[0] - direct[0] == n_in * (ab - spec.data.input_bits) and levels[1:] == direct[1:]
        # 160 bytes hold conv1's output events (T·N bits) but not its input spikes beside them
        n, own, cap = tr.n_samples, T * (n_in + tr.layer("conv1").n_neurons), 160 * 8
        assert own - T * n_in <= cap < own
        small = _SPIKE_INPUT_SPECS["small"]
        (rep,) = replay(tr, ARCH, ["snn"], "paper_v1_45nm", overrides=small, progress=False)
        assert _layer(rep, "conv1")["counts"]["dram.spill_write"] == n * (own - cap)
        # and the ideal buffer makes room for them
        base, bits = load_arch_spec(ARCH, small), trace_activation_bits(tr)
        (direct,) = mh.ideal_overrides(base, tr.layers, T, bits)
        (spikes,) = mh.ideal_overrides(base, tr.layers, T, bits, spike_input=True)
        assert int(spikes.split("=")[1]) > int(direct.split("=")[1])


_SPIKE_INPUT_SPECS = {
    "resident": [HUGE],
    "resident_time_major": [HUGE, "mapping.loop_order=time_major"],
    "dense": [HUGE, "mapping.zero_skipping=false", "components.pe_array.rows=3"],
    "small": ["components.global_buffer.capacity_bytes=160"],
    "small_time_major": ["components.global_buffer.capacity_bytes=304", "mapping.loop_order=time_major"],
}


@pytest.mark.parametrize("model", ["tiny_resnet", "tiny", "input_add"])
@pytest.mark.parametrize("name", list(_SPIKE_INPUT_SPECS))
def test_the_closed_form_equals_the_simulator_when_the_input_is_spikes(spike_input_traces, model, name):
    opts = _SPIKE_INPUT_SPECS[name]
    with open_trace(spike_input_traces[model]) as tr:
        for rep in replay(tr, ARCH, ["snn", "ann"], TABLE.path, overrides=opts, progress=False):
            pred = _predict(tr, opts, rep["mode"])
            assert_matches_report(pred, rep)
            for lp in pred.layers:
                for key in ("dram.spike_read", "dram.input_read"):
                    assert lp.terms.get(key, {}).keys() <= {"input_events_once_per_sample",
                                                            "input_levels_once_per_sample"}, lp.name
    doc = run_validation(str(spike_input_traces[model]), ARCH, ideal=True, overrides=opts, progress=False,
                         paper=False)
    assert doc["ok"], name


# --- (f) membrane/current addition: conv layers that output currents into the add ---------------
@pytest.fixture(scope="module")
def current_trace(tmp_path_factory):
    """``synth --model tiny_resnet --T 4 --rate 0.2 --samples 2 --residual current``."""
    path = tmp_path_factory.mktemp("current") / "tiny_resnet_current.h5"
    layers, shape = model_layers("tiny_resnet", 4, residual="current")
    write_synthetic_trace(path, layers, shape, model="tiny_resnet", T=4, n_samples=2, rate=0.2, seed=0,
                          with_weights=False)
    return path


def _conv_events(tr, layer):
    """E of a conv layer over every sample, enumerated: each input spike times the output
    positions whose window covers it, times the output channels (groups = 1)."""
    c, h, w = layer.input_shape
    k, oh, ow = layer.output_shape
    cover = np.zeros((h, w), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(layer.kernel[0]):
                for kx in range(layer.kernel[1]):
                    iy = oy * layer.stride[0] - layer.padding[0] + ky
                    ix = ox * layer.stride[1] - layer.padding[1] + kx
                    if 0 <= iy < h and 0 <= ix < w:
                        cover[iy, ix] += 1
    (src,) = tr.sources(layer.name)
    return sum(int((tr.spikes(src.name, i).reshape(tr.T, c, h, w) * cover).sum()) * k
               for i in range(tr.n_samples))


def test_a_current_layer_integrates_without_a_neuron_and_its_add_reads_its_values(current_trace):
    spec = load_arch_spec(ARCH)
    mb, pb = spec.data.membrane_bits, spec.data.psum_bits
    with open_trace(current_trace) as tr:
        reps = {r["mode"]: r for r in replay(tr, ARCH, ["snn", "ann"], "paper_v1_45nm", progress=False)}
        n, T = tr.n_samples, tr.T
        currents = [l for l in tr.layers if l.output == "current"]
        adds = [l for l in tr.layers if l.kind == "add"]
        assert [l.name for l in currents] == ["s1b1_conv2", "s2b1_conv2", "s2b1_down"]
        for l in currents:
            N, E = l.n_neurons, _conv_events(tr, l)
            snn, ann = _layer(reps["snn"], l.name), _layer(reps["ann"], l.name)
            c = snn["counts"]
            assert not {"pe_array.compare", "pe_array.leak", "global_buffer.spike_write",
                        "dram.output_write"} & c.keys(), l.name
            # integration as a neuron layer's, into an accumulator held like membranes
            assert c["global_buffer.weight_read"] == c["pe_array.add"] == E
            assert c["register_file.membrane_read"] == c["register_file.membrane_write"] == E
            assert c["global_buffer.current_write"] == n * T * N
            assert c["global_buffer.membrane_read"] == c["global_buffer.membrane_write"] == n * T * N
            assert snn["bits"]["global_buffer.current_write"] == mb
            assert snn["totals"]["neuron_updates"] == 0 and snn["totals"]["synaptic_ops"] == E
            # the twin: its psums go to the buffer for the add, no quantise, nothing to DRAM
            a = ann["counts"]
            assert a["global_buffer.output_write"] == n * N and ann["bits"]["global_buffer.output_write"] == pb
            assert "pe_array.compare" not in a and "dram.output_write" not in a
            assert ann["totals"]["neuron_updates"] == 0
        for l in adds:
            C = sum(s.n_neurons for s in tr.sources(l.name) if s.output == "current")
            spiking = [s for s in tr.sources(l.name) if s.output == "spikes"]
            S = sum(int(tr.spikes(s.name, i).sum()) for s in spiking for i in range(n))
            nnz = sum(int(np.count_nonzero(tr.activations(s.name, i))) for s in spiking for i in range(n))
            F = sum(int(tr.spikes(l.name, i).sum()) for i in range(n))
            snn, ann = _layer(reps["snn"], l.name), _layer(reps["ann"], l.name)
            c = snn["counts"]
            assert c["global_buffer.current_read"] == n * T * C and snn["bits"]["global_buffer.current_read"] == mb
            assert c["pe_array.add"] == S + F + n * T * C
            assert c["register_file.membrane_read"] == S + n * T * l.n_neurons   # no access for currents
            assert snn["totals"]["adds"] == S + n * T * C
            a = ann["counts"]
            assert a["global_buffer.current_read"] == n * C and ann["bits"]["global_buffer.current_read"] == pb
            assert a["pe_array.add"] == nnz + n * C and a["global_buffer.input_read"] == nnz
            assert ann["totals"]["adds"] == nnz + n * C
        assert {l.name: sum(s.output == "current" for s in tr.sources(l.name)) for l in adds} == \
            {"s1b1_add": 1, "s2b1_add": 2}


def test_the_currents_handed_over_are_held_as_events_until_the_add_reads_them(current_trace):
    spec = load_arch_spec(ARCH)
    mb, pb = spec.data.membrane_bits, spec.data.psum_bits
    with open_trace(current_trace) as tr:
        T, names = tr.T, [l.name for l in tr.layers if l.output != "passthrough"]
        down, conv2, add = tr.layer("s2b1_down"), tr.layer("s2b1_conv2"), tr.layer("s2b1_add")
        shortcut = tr.layer("s1b1_add")   # read by s2b1_down: its input, not live across it
        for mode, per, steps in (("snn", mb, T), ("ann", pb, 1)):
            ab = 8
            held = dict(zip(names, held_bits(tr.layers, mode, T, "layer_major", ab, spec.data.input_bits,
                                             current_bits=per)))
            inputs = down.n_inputs * (ab if mode == "ann" else 1)
            # its own input events and N current values out, plus s2b1_conv2's currents live across it
            assert held["s2b1_down"] == steps * (inputs + down.n_neurons * per + conv2.n_neurons * per)
            # the add holds its two current operands as its input
            out = add.n_neurons * (ab if mode == "ann" else 1)
            assert held["s2b1_add"] == steps * (add.n_inputs * per + out)
            assert held["s2b1_conv2"] > steps * shortcut.n_neurons   # the spike shortcut is live across it


_CURRENT_SPECS = {"resident": [HUGE], "resident_time_major": [HUGE, "mapping.loop_order=time_major"],
                  "dense": [HUGE, "mapping.zero_skipping=false", "components.pe_array.rows=3"],
                  "small": ["components.global_buffer.capacity_bytes=120"],
                  "small_time_major": ["components.global_buffer.capacity_bytes=200", "mapping.loop_order=time_major"]}


@pytest.mark.parametrize("name", list(_CURRENT_SPECS))
def test_the_closed_form_equals_the_simulator_with_current_residuals(current_trace, name):
    opts = _CURRENT_SPECS[name]
    with open_trace(current_trace) as tr:
        causes = set()
        for rep in replay(tr, ARCH, ["snn", "ann"], TABLE.path, overrides=opts, progress=False):
            pred = _predict(tr, opts, rep["mode"])
            assert_matches_report(pred, rep)
            causes |= {c for lp in pred.layers for cs in lp.nonideal_terms().values() for c in cs}
    assert causes <= NONIDEAL_CAUSES
    assert (causes == set()) == name.startswith(("resident", "dense"))
    if name == "small":
        assert "io_events_spilled" in causes


def test_validate_ideal_is_exact_with_current_residuals(current_trace):
    doc = run_validation(str(current_trace), ARCH, ideal=True, progress=False, paper=False)
    assert doc["ok"]
