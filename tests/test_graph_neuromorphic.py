"""Layer graphs on the neuromorphic mesh: residual adds and max pools counted against a
brute force over the trace's spikes and the mapping, a layer's events sent to every consumer,
LIF leak costs, and the closed form equal to the simulator on graph traces."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

from sim.analytic import neuromorphic as nm
from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
from sim.analytic.neuromorphic_routes import destinations
from sim.arch.spec import load_arch_spec
from sim.architectures.neuromorphic import Neuromorphic
from sim.architectures.neuromorphic_mapping import layer_routing
from sim.cli import main as cli
from sim.mapping.encoding import address_bits
from sim.mapping.neuromorphic import LayerGroups
from sim.replay import replay
from sim.trace import LayerSpec, open_trace
from sim.validation.compare import run_validation
from sim.workload import Workload

import brute
from conftest import REPO
from analytic_helpers import write_rate_graph
from test_neuromorphic import xy_links

RESNET = REPO / "traces" / "tiny_resnet_T4.h5"
RESNET_LIF = REPO / "traces" / "tiny_resnet_lif_T4.h5"
# one configuration: an 8x8 mesh of cores of 32 neurons (24-bit state), each layer on several cores
ONE_CONFIG = ["components.noc.width=8", "components.noc.height=8", "components.neuron_memory.capacity_bytes=96"]
# six configurations on a 2x2 mesh: one operand of s1b1_add comes from DRAM, the other from the mesh
PAGED = ["components.noc.width=2", "components.noc.height=2", "components.neuron_memory.capacity_bytes=96",
         "mapping.placement=nearest", "mapping.partition=spatial"]
# three configurations on a 3x3 mesh: s1b1_add's consumers sit one on chip, one in the next configuration
SPLIT = ["components.noc.width=3", "components.noc.height=3", "components.neuron_memory.capacity_bytes=96",
         "mapping.multicast=true"]
SPECS = {"one_config": ONE_CONFIG, "paged": PAGED, "split": SPLIT}


def simulate(path, overrides, mode):
    spec = load_arch_spec("neuromorphic", overrides)
    with open_trace(path) as tr:
        sim = Neuromorphic(spec, Workload(tr))
        return sim, sim.run(mode, tr.n_samples)


@pytest.fixture(scope="module")
def runs():
    """Simulator and result per (spec name, mode) on the IF ResNet trace."""
    return {(name, mode): simulate(RESNET, ov, mode) for name, ov in SPECS.items() for mode in ("snn", "ann")}


# --- brute force -------------------------------------------------------------------------------
def synapses(layer: LayerSpec):
    """(input element, output neuron) of every synapse, enumerated one at a time: an add's
    operand element reaches the neuron at its position; a max pool's input reaches every
    window covering it; other kinds as tests/brute.py."""
    if layer.kind == "add":
        n = math.prod(layer.input_shape)
        for k in range(layer.n_operands):
            for e in range(n):
                yield k * n + e, e
        return
    if layer.kind != "maxpool":
        yield from brute.synapses(layer)
        return
    C, H, W = layer.input_shape
    _, OH, OW = layer.output_shape
    for c in range(C):
        for oy in range(OH):
            for ox in range(OW):
                for ky in range(layer.kernel[0]):
                    for kx in range(layer.kernel[1]):
                        y = oy * layer.stride[0] - layer.padding[0] + ky
                        x = ox * layer.stride[1] - layer.padding[1] + kx
                        if 0 <= y < H and 0 <= x < W:
                            yield (c * H + y) * W + x, (c * OH + oy) * OW + ox


def brute_layer(sim: Neuromorphic, path, name: str, mode: str) -> dict[str, int]:
    """One layer's input events, one event and one synapse at a time: per event the cores of
    the layer's parts holding a target (unicast: a packet each along its XY route; multicast:
    one packet, the union of the routes), and the synapses it reaches. The source node of an
    operand's element is its neuron's core when the source layer sits whole in the part's
    configuration, else the I/O router."""
    m, mesh = sim.map, sim.map.mesh
    i = [l.name for l in sim.wl.layers].index(name)
    layer, lg = sim.wl.layers[i], m.groups[i]
    names = [l.name for l in sim.wl.layers]
    out = dict.fromkeys(["packet", "hops_ew", "hops_ns", "synapses", "events"], 0)
    with open_trace(path) as tr:
        sources = [None if s is None else names.index(s.name) for s in tr.sources(name)]
        n_op = layer.n_inputs // len(sources)
        flits = -(-(mesh.header_bits + address_bits(layer.n_inputs) + (0 if mode == "snn" else sim.act_bits))
                  // mesh.flit_bits)
        for part in m.layer_parts(i):
            targets: dict[int, dict[int, int]] = {}
            for e, o in synapses(layer):
                node = int(part.group_node[lg.gon[o]])
                if node >= 0:
                    targets.setdefault(e, {})
                    targets[e][node] = targets[e].get(node, 0) + 1

            def source_node(e):
                j = sources[e // n_op]
                src_parts = m.layer_parts(j) if j is not None else []
                if len(src_parts) == 1 and src_parts[0].segment == part.segment:
                    return int(src_parts[0].group_node[m.groups[j].gon[e % n_op]])
                return m.io_node

            for s in range(tr.n_samples):
                if mode == "snn":
                    rows = tr.input_spikes(name, s).reshape(tr.T, -1)
                else:
                    rows = [np.concatenate([tr.activations(names[j], s).reshape(-1) for j in sources])]
                for row in rows:
                    for e in np.flatnonzero(row):
                        src = source_node(int(e))
                        dests = targets.get(int(e), {})
                        out["events"] += 1
                        out["synapses"] += sum(dests.values())
                        routes = [xy_links(mesh, src, node) for node in dests]
                        if sim.multicast:
                            routes = [set().union(*routes)] if routes else []
                        out["packet"] += len(routes)
                        for links in routes:
                            out["hops_ew"] += flits * sum(a[1] == b[1] for a, b in links)
                            out["hops_ns"] += flits * sum(a[0] == b[0] for a, b in links)
    return out


def output_spikes(path, name: str, mode: str) -> int:
    with open_trace(path) as tr:
        if mode == "snn":
            return sum(int(tr.spikes(name, s).sum()) for s in range(tr.n_samples))
        return sum(int(np.count_nonzero(tr.activations(name, s))) for s in range(tr.n_samples))


# --- (a) add and max pool, counted ---------------------------------------------------------------
@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("mode", ["snn", "ann"])
@pytest.mark.parametrize("name", ["maxpool", "s1b1_add", "s2b1_add"])
def test_add_and_maxpool_counts_equal_a_brute_force_over_spikes_and_mapping(runs, spec, mode, name):
    sim, result = runs[(spec, mode)]
    want = brute_layer(sim, RESNET, name, mode)
    got = result.ledger.layer_counts(name)
    layer = sim.wl.layers[[l.name for l in sim.wl.layers].index(name)]
    fired = output_spikes(RESNET, name, mode)
    assert want["events"] > 0 and want["packet"] > 0
    assert got["noc.packet"] == want["packet"]
    assert got["noc.flit_hop_ew"] == want["hops_ew"]
    assert got["noc.flit_hop_ns"] == want["hops_ns"]
    assert not any(v for k, v in got.items() if k.startswith("synapse_memory."))  # neither stores weights
    assert got["core.fire"] == fired
    N = layer.n_neurons * 4  # neurons x samples
    if name == "maxpool":  # one compare per (input event, covering window); no neuron update
        assert got["core.compare"] == want["synapses"]
        assert "neuron_memory.membrane_read" not in got and "neuron_memory.state_write" not in got
        if mode == "ann":  # the running max, read and written per compare; read out once
            assert got["neuron_memory.psum_read"] == got["neuron_memory.psum_write"] == want["synapses"]
            assert got["neuron_memory.state_read"] == N
        else:
            assert "core.add" not in got and "neuron_memory.state_read" not in got
    else:  # fan-out 1: one accumulation per operand event, then the neuron update
        assert want["synapses"] == want["events"]
        if mode == "snn":
            assert got["neuron_memory.membrane_read"] == got["neuron_memory.membrane_write"] == want["events"]
            assert got["core.add"] == want["events"] + fired
            assert got["core.compare"] == got["neuron_memory.state_read"] == N * 4  # every step
        else:
            assert got["core.add"] == got["neuron_memory.psum_read"] == want["events"]
            assert got["core.compare"] == got["neuron_memory.state_read"] == N


def test_adds_and_max_pools_store_no_weights_and_count_apart_from_macs(runs):
    sim, result = runs[("one_config", "snn")]
    layers = sim.routed.summary()["layers"]
    for name in ("maxpool", "s1b1_add", "s2b1_add"):
        assert set(layers[name]["synapse_bytes_per_core"]) == {0}
        assert result.workload[name]["macs"] == result.workload[name]["synaptic_ops"] == 0
    assert result.workload["s1b1_add"]["adds"] > 0 and result.workload["maxpool"]["compares"] > 0


def test_an_add_with_one_operand_on_chip_reads_only_the_other_from_dram(runs):
    sim, result = runs[("paged", "snn")]
    mixed = [p for p in sim.map.parts if len(set(p.operands_on_chip)) == 2]
    assert mixed, "the paged spec should split an add's operands across configurations"
    part = mixed[0]
    name = sim.wl.layers[part.layer_index].name
    n = sim.wl.operand_size(part.layer_index)
    off = [k for k, on in enumerate(part.operands_on_chip) if not on]
    with open_trace(RESNET) as tr:
        spikes = [tr.input_spikes(name, s).reshape(tr.T, len(part.operands_on_chip), n) for s in range(tr.n_samples)]
    assert result.ledger.layer_counts(name)["dram.spike_read"] == sum(int(x[:, off].sum()) for x in spikes)


# --- (b) a layer with several consumers -----------------------------------------------------------
@pytest.mark.parametrize("spec", list(SPECS))
def test_a_layer_with_two_consumers_sends_packets_to_each(runs, spec):
    sim, result = runs[(spec, "snn")]
    names = [l.name for l in sim.wl.layers]
    src = names.index("s1b1_add")
    consumers = [names[j] for j in sim.wl.consumers[src]]
    assert consumers == ["s2b1_conv1", "s2b1_down"]
    per_consumer = {c: brute_layer(sim, RESNET, c, "snn")["packet"] for c in consumers}
    assert all(v > 0 for v in per_consumer.values())
    got = {c: result.ledger.layer_counts(c)["noc.packet"] for c in consumers}
    assert got == per_consumer
    assert sum(got.values()) == sum(per_consumer.values())


def test_events_read_by_a_consumer_in_another_configuration_are_written_once(runs):
    sim, result = runs[("split", "snn")]
    (p_add,) = sim.map.layer_parts(sim.wl.layers.index(sim.wl.trace.layer("s1b1_add")))
    (p_conv,), (p_down,) = (sim.map.layer_parts(j) for j in sim.wl.consumers[p_add.layer_index])
    assert p_conv.segment == p_add.segment != p_down.segment
    assert p_add.output_off_chip and p_conv.input_on_chip and not p_down.input_on_chip
    spikes = output_spikes(RESNET, "s1b1_add", "snn")
    counts = {n: result.ledger.layer_counts(n) for n in ("s1b1_add", "s2b1_conv1", "s2b1_down")}
    assert counts["s1b1_add"]["dram.spike_write"] == spikes  # once, for the one consumer off chip
    assert "dram.spike_read" not in counts["s2b1_conv1"] and counts["s2b1_down"]["dram.spike_read"] == spikes


def test_with_multicast_a_spike_is_one_packet_per_consumer_it_reaches():
    sim, result = simulate(RESNET, ONE_CONFIG + ["mapping.multicast=true"], "snn")
    with open_trace(RESNET) as tr:
        spikes = np.stack([tr.spikes("s1b1_add", s) for s in range(tr.n_samples)])  # [S, T, C, H, W]
    # the 3x3 conv (stride 2, padding 1) covers every pixel; the 1x1 stride-2 shortcut the even ones
    assert result.ledger.layer_counts("s2b1_conv1")["noc.packet"] == int(spikes.sum())
    assert result.ledger.layer_counts("s2b1_down")["noc.packet"] == int(spikes[..., ::2, ::2].sum())


# --- (c) LIF neurons -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def if_and_lif(tmp_path_factory):
    """The same spikes (same seed and rate) declared IF (SNN-only, so both twins are derived) and LIF."""
    d = tmp_path_factory.mktemp("lif")
    paths = {}
    for kind, extra in (("IF", ["--snn-only"]), ("LIF", ["--neuron", "LIF"])):
        paths[kind] = d / f"{kind}.h5"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert cli(["synth", "--model", "tiny_resnet", "--T", "3", "--rate", "0.2", "--samples", "2",
                        "--seed", "5", *extra, "--out", str(paths[kind])]) == 0
    return paths


@pytest.mark.parametrize("overrides", [[], PAGED])
def test_lif_costs_exactly_n_times_t_leak_ops_more_than_if(if_and_lif, overrides):
    reports = {}
    for kind, path in if_and_lif.items():
        with open_trace(path) as tr:
            reports[kind] = {r["mode"]: r for r in replay(tr, "neuromorphic", ["snn", "ann"], "paper_v1_45nm",
                                                          overrides=overrides, progress=False)}
    with open_trace(if_and_lif["LIF"]) as tr:
        assert all(l.neuron.leaks for l in tr.layers if l.has_neurons)
        leaks = {l.name: l.n_neurons * tr.T * tr.n_samples for l in tr.layers if l.has_neurons}
    for mode in ("snn", "ann"):
        a, b = reports["IF"][mode], reports["LIF"][mode]
        assert a["cycles"] == b["cycles"]
        for la, lb in zip(a["layers"], b["layers"]):
            extra = {k: v for k, v in lb["counts"].items() if k not in la["counts"]}
            assert {k: v for k, v in lb["counts"].items() if k in la["counts"]} == la["counts"]
            assert extra == ({"core.leak": leaks[lb["name"]]} if mode == "snn" and lb["name"] in leaks else {})
        leak_pj = b["energy_pj"]["by_action"].get("core.leak", 0.0)
        assert b["energy_pj"]["total"] - a["energy_pj"]["total"] == pytest.approx(leak_pj, rel=1e-9, abs=1e-6)
        assert (leak_pj > 0) == (mode == "snn")


# --- (d) the closed form on graph traces -----------------------------------------------------------
@pytest.mark.parametrize("path", [RESNET, RESNET_LIF], ids=["IF", "LIF"])
@pytest.mark.parametrize("spec", ["ideal", "paged"])
def test_the_closed_form_equals_the_simulator_on_graph_traces(path, spec):
    base = load_arch_spec("neuromorphic", PAGED if spec == "paged" else [])
    with open_trace(path) as tr:
        forced = nm.ideal_overrides(base, tr.layers, tr.T, trace_activation_bits(tr)) if spec == "ideal" else []
        overrides = (PAGED if spec == "paged" else []) + forced
        full = load_arch_spec("neuromorphic", overrides)
        stats = trace_event_stats(tr)
        reports = replay(tr, "neuromorphic", ["snn", "ann"], "paper_v1_45nm", overrides=overrides, progress=False)
        for rep in reports:
            pred = nm.predict(full, tr.layers, stats, tr.T, rep["mode"], trace_activation_bits(tr))
            configs = rep["extra"]["mapping"]["segments"]
            assert (configs == 1) == (spec == "ideal")
            for lr, lp in zip(rep["layers"], pred.layers):
                keys = set(lr["counts"]) | set(lp.counts)
                assert {k: lr["counts"].get(k, 0) for k in keys} == {k: lp.counts.get(k, 0) for k in keys}, lr["name"]
                assert {k: lr["totals"][k] for k in lp.totals} == lp.totals, lr["name"]
                assert {c for cs in lp.nonideal_terms().values() for c in cs} <= NONIDEAL_CAUSES
                if configs == 1:
                    assert lp.counts == lp.ideal_counts


@pytest.mark.parametrize("ideal", [True, False])
def test_validate_agrees_on_a_graph_trace(ideal):
    doc = run_validation(str(RESNET_LIF), "neuromorphic", ideal=ideal, overrides=[] if ideal else PAGED,
                         progress=False, paper=False)
    assert doc["ok"]
    for run in doc["runs"]:
        assert run["summary"]["unexplained"] == 0
        if ideal:
            assert run["summary"]["with_residual"] == 0
        else:
            assert run["summary"]["with_residual"] > 0 and set(run["causes"]) <= NONIDEAL_CAUSES


@pytest.mark.parametrize("overrides", [[], PAGED])
def test_input_spikes_read_by_an_add_enter_at_the_io_router_and_the_closed_form_agrees(tmp_path, overrides):
    path = write_rate_graph(tmp_path / "rate.h5")
    spec = load_arch_spec("neuromorphic", overrides)
    with open_trace(path) as tr:
        stats = trace_event_stats(tr)
        reports = replay(tr, "neuromorphic", ["snn", "ann"], "paper_v1_45nm", overrides=overrides, progress=False)
        input_spikes = sum(int(np.unpackbits(tr.input_spikes_packed(s)).sum()) for s in range(tr.n_samples))
        for rep in reports:
            pred = nm.predict(spec, tr.layers, stats, tr.T, rep["mode"], trace_activation_bits(tr))
            for lr, lp in zip(rep["layers"], pred.layers):
                keys = set(lr["counts"]) | set(lp.counts)
                assert {k: lr["counts"].get(k, 0) for k in keys} == {k: lp.counts.get(k, 0) for k in keys}, lr["name"]
            if rep["mode"] == "snn" and not overrides:  # one configuration: only the input comes from DRAM
                add = {l["name"]: l for l in rep["layers"]}["add1"]["counts"]
                assert add["dram.spike_read"] == input_spikes
                assert pred.layers[1].terms["dram.spike_read"] == {"events_between_configurations": 0,
                                                                    "input_events_once_per_sample": input_spikes}


# --- dilation ------------------------------------------------------------------------------------------
def test_a_dilated_convs_destinations_equal_an_enumeration_of_its_taps():
    layer = LayerSpec("c", "conv2d", (2, 7, 6), (3, 3, 4), (3, 2), (1, 1), (1, 1), dilation=(2, 3))
    gon = np.arange(layer.n_neurons, dtype=np.int64) * 5 // layer.n_neurons
    lg = LayerGroups(layer, gon, np.zeros(5, dtype=np.int64))
    want: dict[int, dict[int, int]] = {}
    C, H, W = layer.input_shape
    K, OH, OW = layer.output_shape
    for k in range(K):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    for ky in range(3):
                        for kx in range(2):
                            y, x = oy - 1 + 2 * ky, ox - 1 + 3 * kx
                            if 0 <= y < H and 0 <= x < W:
                                g = int(gon[(k * OH + oy) * OW + ox])
                                d = want.setdefault((c * H + y) * W + x, {})
                                d[g] = d.get(g, 0) + 1
    r = layer_routing(lg)
    pat_of, pat, grp, syn = destinations(layer, gon, 5)
    for e in range(layer.n_inputs):
        p = r.pattern_of_input[e]
        got = {int(g): int(s) for g, s in zip(r.group[r.ptr[p]:r.ptr[p + 1]], r.syn[r.ptr[p]:r.ptr[p + 1]])}
        assert got == want.get(e, {}), e
        q = pat_of[e]
        assert {int(g): int(s) for g, s in zip(grp[pat == q], syn[pat == q])} == want.get(e, {}), e


# --- (e) membrane/current addition: output "current" ----------------------------------------------
# eleven configurations on a 1x2 mesh: s1b1_conv2's and s2b1_conv2's currents reach their adds through DRAM
CROSS = ["components.noc.width=1", "components.noc.height=2", "components.neuron_memory.capacity_bytes=96"]
@pytest.fixture(scope="module")
def current_trace(tmp_path_factory):
    """tiny_resnet whose block outputs are currents summed by the adds (LIF neurons elsewhere,
    so a current layer's missing leak shows): s1b1_add = s1b1_conv2 (current) + maxpool (spikes),
    s2b1_add = s2b1_conv2 + s2b1_down (two currents)."""
    from sim.trace.schema import NeuronModel
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    layers, shape = model_layers("tiny_resnet", 3, residual="current", neuron=NeuronModel("LIF", 1.0, "zero", 0.5))
    path = tmp_path_factory.mktemp("current") / "current.h5"
    write_synthetic_trace(path, layers, shape, model="tiny_resnet", T=3, n_samples=2, rate=0.2, seed=3)
    return path


@pytest.mark.parametrize("spec", ["one_config", "paged", "cross"])
@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_a_current_layer_updates_no_neuron_and_sends_n_values_per_step_to_its_add(current_trace, spec, mode):
    sim, result = simulate(current_trace, CROSS if spec == "cross" else SPECS[spec], mode)
    with open_trace(current_trace) as tr:
        S, T = tr.n_samples, (tr.T if mode == "snn" else 1)
        pool_events = (sum(int(tr.spikes("maxpool", s).sum()) for s in range(S)) if mode == "snn"
                       else sum(int(np.count_nonzero(tr.activations("maxpool", s))) for s in range(S)))
        N = {l.name: l.n_neurons for l in tr.layers}
    for name in ("s1b1_conv2", "s2b1_conv2", "s2b1_down"):
        got = result.ledger.layer_counts(name)
        assert not {k for k in got if k.split(".")[1] in ("compare", "fire", "leak", "state_read", "state_write")
                    and got[k]}, name
        syn = result.workload[name]["synaptic_ops" if mode == "snn" else "macs"]
        assert syn > 0 and got["synapse_memory.weight_read"] == syn  # conv layers, shared kernels
        acc = "membrane" if mode == "snn" else "psum"
        assert got[f"neuron_memory.{acc}_read"] == got[f"neuron_memory.{acc}_write"] == syn
        assert got["core.add" if mode == "snn" else "core.mac"] == syn
    # fan-out 1: each current value is one packet to the one core holding the add's neuron at
    # its position, every step (the twin: once); a spike operand's events add one packet each
    add2, add1 = (result.ledger.layer_counts(n) for n in ("s2b1_add", "s1b1_add"))
    values2 = 2 * N["s2b1_add"] * T * S
    assert add2["noc.packet"] == values2
    assert add1["noc.packet"] == N["s1b1_add"] * T * S + pool_events
    acc = "membrane" if mode == "snn" else "psum"
    assert add2[f"neuron_memory.{acc}_read"] == add2[f"neuron_memory.{acc}_write"] == values2
    fired = output_spikes(current_trace, "s2b1_add", mode)
    assert add2["core.add"] == values2 + (fired if mode == "snn" else 0)
    assert result.workload["s2b1_add"]["adds"] == values2
    if spec == "one_config":  # the hops: from the current's neuron j to the add's neuron j, XY
        m, mesh, names = sim.map, sim.map.mesh, [l.name for l in sim.wl.layers]
        payload = sim.d.membrane_bits if mode == "snn" else sim.d.psum_bits
        flits = -(-(mesh.header_bits + address_bits(2 * N["s2b1_add"]) + payload) // mesh.flit_bits)
        (dst,) = m.layer_parts(names.index("s2b1_add"))
        ew = ns = 0
        for src_name in ("s2b1_conv2", "s2b1_down"):
            (src,) = m.layer_parts(names.index(src_name))
            for j in range(N["s2b1_add"]):
                a = mesh.xy(int(src.group_node[m.groups[src.layer_index].gon[j]]))
                b = mesh.xy(int(dst.group_node[m.groups[dst.layer_index].gon[j]]))
                ew, ns = ew + abs(a[0] - b[0]), ns + abs(a[1] - b[1])
        assert add2["noc.flit_hop_ew"] == flits * ew * T * S
        assert add2["noc.flit_hop_ns"] == flits * ns * T * S
    # a current read in another configuration goes through DRAM, every value every step
    names = [l.name for l in sim.wl.layers]
    crossed = 0
    for name in ("s1b1_conv2", "s2b1_conv2", "s2b1_down"):
        out = sum(int(p.node_neurons.sum()) for p in sim.map.layer_parts(names.index(name)) if p.output_off_chip)
        crossed += out
        assert result.ledger.layer_counts(name).get("dram.output_write", 0) == out * T * S, name
    reads = 0
    for name in ("s1b1_add", "s2b1_add"):
        i = names.index(name)
        want = sum(sim.wl.operand_size(i) * sum(1 for k in sim.wl.current_operands(i) if not p.operands_on_chip[k])
                   for p in sim.map.layer_parts(i)) * T * S
        reads += want
        assert result.ledger.layer_counts(name).get("dram.input_read", 0) == want, name
    assert (crossed > 0 and reads > 0) == (spec == "cross")


@pytest.mark.parametrize("spec", ["ideal", "paged", "cross"])
def test_the_closed_form_equals_the_simulator_with_current_operands(current_trace, spec):
    given = {"ideal": [], "paged": PAGED, "cross": CROSS}[spec]
    base = load_arch_spec("neuromorphic", given)
    with open_trace(current_trace) as tr:
        forced = nm.ideal_overrides(base, tr.layers, tr.T, trace_activation_bits(tr)) if spec == "ideal" else []
        overrides = given + forced
        full = load_arch_spec("neuromorphic", overrides)
        stats = trace_event_stats(tr)
        reports = replay(tr, "neuromorphic", ["snn", "ann"], "paper_v1_45nm", overrides=overrides, progress=False)
        for rep in reports:
            pred = nm.predict(full, tr.layers, stats, tr.T, rep["mode"], trace_activation_bits(tr))
            assert (rep["extra"]["mapping"]["segments"] == 1) == (spec == "ideal")
            for lr, lp in zip(rep["layers"], pred.layers):
                keys = set(lr["counts"]) | set(lp.counts)
                assert {k: lr["counts"].get(k, 0) for k in keys} == {k: lp.counts.get(k, 0) for k in keys}, lr["name"]
                assert {k: lr["totals"][k] for k in lp.totals} == lp.totals, lr["name"]
                assert {c for cs in lp.nonideal_terms().values() for c in cs} <= NONIDEAL_CAUSES


def test_validate_is_exact_with_current_operands(current_trace):
    doc = run_validation(str(current_trace), "neuromorphic", ideal=True, overrides=[], progress=False, paper=False)
    assert doc["ok"]
    for run in doc["runs"]:
        assert run["summary"]["unexplained"] == 0 and run["summary"]["with_residual"] == 0
