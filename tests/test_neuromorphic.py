"""The neuromorphic architecture: every NoC count against a brute force over the trace's
spikes, capacities respected, paging, the bad-parameter errors, and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.mapping.encoding import address_bits
from sim.architectures.neuromorphic import Neuromorphic
from sim.errors import ParameterError, SpecError
from sim.replay import replay
from sim.report import build_report
from sim.trace import open_trace
from sim.workload import Workload

import brute
from conftest import run_cli

# an 8x8 mesh of cores holding 32 neurons (24-bit state) and 1 KiB of weights each
SMALL = ["components.noc.width=8", "components.noc.height=8", "components.neuron_memory.capacity_bytes=96",
         "components.synapse_memory.capacity_bytes=1024"]


#: a synaptic event's weight read, one action per synapse kind (docs/architectures/neuromorphic.md)
SYNAPSE_READS = ("synapse_memory.weight_read", "synapse_memory.dense_weight_read",
                 "synapse_memory.sparse_weight_read")


def synaptic_reads(counts: dict) -> int:
    """Weight reads of every synapse kind."""
    return sum(counts.get(k, 0) for k in SYNAPSE_READS)


def simulate(trace_path, overrides, mode="snn", samples=None):
    spec = load_arch_spec("neuromorphic", overrides)
    with open_trace(trace_path) as tr:
        wl = Workload(tr)
        sim = Neuromorphic(spec, wl)
        result = sim.run(mode, samples or tr.n_samples)
    return sim, result, spec


def brute_events(sim: Neuromorphic, trace_path, mode: str):
    """Per part, one event at a time: (layer name, source node, destination nodes, flits).

    An event is an input spike at one step (SNN), or a non-zero graded input once per sample
    (the image; ANN activations). Its destinations are the part's cores that hold at least
    one of its synapses' targets, enumerated synapse by synapse."""
    m = sim.map
    mesh = m.mesh
    with open_trace(trace_path) as tr:
        for part in m.parts:
            layer = sim.wl.layers[part.layer_index]
            lg = m.groups[part.layer_index]
            targets: dict[int, set] = {}
            for i, o in brute.synapses(layer):
                g = int(lg.gon[o])
                if part.group_node[g] >= 0:
                    targets.setdefault(i, set()).add(int(part.group_node[g]))
            prod = sim.producers[part.layer_index]
            if prod is not None and part.input_on_chip:
                pg, pp = m.groups[prod], [p for p in m.parts if p.layer_index == prod][0]
                src = lambda i: int(pp.group_node[pg.gon[i]])  # noqa: E731
            else:
                src = lambda i: m.io_node  # noqa: E731
            graded = prod is None or mode == "ann"
            payload = (sim.d.input_bits if prod is None else sim.act_bits) if graded else 0
            flits = -(-(mesh.header_bits + address_bits(layer.n_inputs) + payload) // mesh.flit_bits)
            for s in range(tr.n_samples):
                if prod is None:
                    events = [np.flatnonzero(tr.input(s).reshape(-1))]
                elif mode == "ann":
                    events = [np.flatnonzero(tr.activations(sim.wl.layers[prod].name, s).reshape(-1))]
                else:
                    spikes = tr.input_spikes(layer.name, s).reshape(tr.T, -1)
                    events = [np.flatnonzero(row) for row in spikes]
                for row in events:
                    for i in row:
                        yield layer.name, src(int(i)), targets.get(int(i), set()), flits


def xy_links(mesh, src: int, dst: int) -> set:
    """The directed links of the XY route src -> dst: along the source's row, then the
    destination's column; each link ((x, y), (x', y'))."""
    (x, y), (dx, dy) = mesh.xy(src), mesh.xy(dst)
    links = set()
    while x != dx:
        nx = x + (1 if dx > x else -1)
        links.add(((x, y), (nx, y)))
        x = nx
    while y != dy:
        ny = y + (1 if dy > y else -1)
        links.add(((x, y), (x, ny)))
        y = ny
    return links


def brute_noc(sim: Neuromorphic, trace_path, mode: str, multicast: bool = False) -> dict[str, dict[str, int]]:
    """Per layer: packets and E-W / N-S flit hops, one event and one target at a time.
    Unicast: a packet per destination core, each its XY route. Multicast: one packet per event
    that reaches at least one core, its links the union of the XY routes to every destination."""
    out = {}
    for name, src, dests, flits in brute_events(sim, trace_path, mode):
        c = out.setdefault(name, {"packet": 0, "flit_hop_ew": 0, "flit_hop_ns": 0})
        routes = [xy_links(sim.map.mesh, src, d) for d in dests]
        if multicast:
            c["packet"] += 1 if dests else 0
            routes = [set().union(*routes)]
        else:
            c["packet"] += len(dests)
        for links in routes:
            c["flit_hop_ew"] += flits * sum(a[1] == b[1] for a, b in links)
            c["flit_hop_ns"] += flits * sum(a[0] == b[0] for a, b in links)
    return out


@pytest.mark.parametrize("mode", ["snn", "ann"])
@pytest.mark.parametrize("placement,partition", [("row_major", "channel_major"), ("nearest", "spatial")])
def test_every_noc_count_equals_the_brute_force(tiny_trace, mode, placement, partition):
    sim, result, _ = simulate(tiny_trace, SMALL + [f"mapping.placement={placement}",
                                                   f"mapping.partition={partition}"], mode)
    assert sim.map.n_segments == 1
    want = brute_noc(sim, tiny_trace, mode)
    for name, counts in want.items():
        got = result.ledger.layer_counts(name)
        for action, n in counts.items():
            assert got[f"noc.{action}"] == n, (name, action)


def test_packets_per_spike_are_its_distinct_destination_cores(tiny_trace):
    sim, result, _ = simulate(tiny_trace, SMALL + ["mapping.placement=row_major"])
    # every input of a linear layer reaches every core holding one of its neurons
    fc1 = sim.map.groups[[l.name for l in sim.wl.layers].index("fc1")]
    assert fc1.n_groups == 2
    assert result.ledger.layer_counts("fc1")["noc.packet"] == 2 * result.workload["fc1"]["spikes_in"]


@pytest.mark.parametrize("sharing", [True, False])
@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_each_synaptic_event_reads_its_weight_once_as_its_synapse_kind(tiny_trace, mode, sharing):
    """One read per synaptic event, counted by how the core stores the synapses: a linear
    layer's dense matrix (dense_weight_read), a conv's or average pool's shared kernels
    (weight_read) or, without weight sharing, its explicit synapses (sparse_weight_read)."""
    sim, result, _ = simulate(tiny_trace, SMALL + [f"mapping.weight_sharing={str(sharing).lower()}"], mode)
    kinds = {l.name: l.kind for l in sim.wl.layers}
    assert {"linear", "conv2d", "avgpool"} <= set(kinds.values())
    for name, work in result.workload.items():
        got = result.ledger.layer_counts(name)
        kind = ("dense_weight_read" if kinds[name] == "linear" else "weight_read" if sharing
                else "sparse_weight_read")
        reads = got[f"synapse_memory.{kind}"]
        assert synaptic_reads(got) == reads, name  # no other kind
        ops = "adds" if name.startswith("pool") else "macs" if mode == "ann" or name == "conv1" else "synaptic_ops"
        assert reads == work[ops], name   # an average pool's sums are adds


@pytest.mark.parametrize("partition", ["channel_major", "spatial"])
@pytest.mark.parametrize("sharing", [True, False])
def test_groups_respect_both_core_capacities(tiny_trace, partition, sharing):
    sim, _, spec = simulate(tiny_trace, SMALL + [f"mapping.weight_sharing={str(sharing).lower()}",
                                                 f"mapping.partition={partition}"], samples=1)
    cap_n = spec["neuron_memory"].capacity_bytes * 8 // max(spec.data.membrane_bits, spec.data.psum_bits)
    wb = spec.data.weight_bits
    for lg in sim.map.groups:
        layer = lg.layer
        assert lg.gon.shape == (layer.n_neurons,)
        assert (lg.neurons() >= 1).all() and (lg.neurons() <= cap_n).all()
        assert (lg.synapse_bits <= spec["synapse_memory"].capacity_bytes * 8).all()
        # what each core stores, recounted: the kernels of its channels, or every synapse
        channel = np.arange(layer.n_neurons) // (layer.n_neurons // layer.output_shape[0])
        for g in range(lg.n_groups):
            members = lg.gon == g
            units = len(set(channel[members])) if sharing else int(members.sum())
            assert lg.synapse_bits[g] == units * layer.fan_in * wb


def test_smaller_cores_mean_more_cores_no_fewer_hops_and_the_same_synaptic_ops(tiny_trace):
    runs = []
    for neurons in (64, 32, 16):
        sim, result, _ = simulate(tiny_trace, SMALL + [f"components.neuron_memory.capacity_bytes={neurons * 3}",
                                                       "mapping.placement=row_major"])
        assert sim.map.n_segments == 1
        t = result.ledger.totals()
        runs.append((result.extra["mapping"]["cores_used"], t["noc.flit_hop_ew"] + t["noc.flit_hop_ns"],
                     synaptic_reads(t)))
    cores, hops, synops = zip(*runs)
    assert cores[0] < cores[1] < cores[2]
    assert hops[0] <= hops[1] <= hops[2]
    assert synops[0] == synops[1] == synops[2]


# a 2x2 mesh of 32-neuron cores: tiny needs 30 cores, so it runs in 8 chip configurations
PAGED = ["components.noc.width=2", "components.noc.height=2", "components.neuron_memory.capacity_bytes=96"]


@pytest.mark.parametrize("mode", ["snn", "ann"])
@pytest.mark.parametrize("overrides", [SMALL, PAGED + ["mapping.partition=spatial"]],
                         ids=["one_config", "paged_spatial"])
def test_multicast_sends_one_packet_per_event_that_reaches_a_core_and_never_more_flit_hops(tiny_trace, overrides,
                                                                                           mode):
    _, uni, _ = simulate(tiny_trace, overrides, mode)
    sim, multi, _ = simulate(tiny_trace, overrides + ["mapping.multicast=true"], mode)
    want = brute_noc(sim, tiny_trace, mode, multicast=True)
    for name, counts in want.items():
        got = multi.ledger.layer_counts(name)
        for action, n in counts.items():
            assert got[f"noc.{action}"] == n, (name, action)
    if sim.map.n_segments > 1:
        # spatial tiles split over configurations: some events reach no core of a part, so
        # "one packet per event" is not "one packet per event and part"
        events = [bool(d) for _, _, d, _ in brute_events(sim, tiny_trace, mode)]
        assert not all(events) and any(events)
    u, m = uni.ledger.totals(), multi.ledger.totals()
    assert m["noc.packet"] <= u["noc.packet"]
    assert m["noc.flit_hop_ew"] + m["noc.flit_hop_ns"] <= u["noc.flit_hop_ew"] + u["noc.flit_hop_ns"]
    assert synaptic_reads(m) == synaptic_reads(u) > 0


def test_a_model_larger_than_the_mesh_pages_its_weights_from_dram(tiny_trace):
    """By hand, from docs/architectures/neuromorphic.md (Mapping, Segments). 96 bytes of neuron
    memory hold 96·8 / 24 = 32 neurons; the synapse memory (128 KiB) never binds. tiny, C-order
    runs of 32 neurons (channel_major), each core storing the kernels of the channels it holds:
      conv1 4x8x8 = 256 neurons: 8 cores of half a channel, 1 kernel of 2·3·3 = 18 weights each
      conv2 8x8x8 = 512: 16 cores of half a channel, 1 kernel of 4·3·3 = 36 each
      pool1 8x4x4 = 128: 4 cores of 2 channels, 2 kernels of 2·2 = 4 each
      fc1 16 (fan-in 128): 1 core, 16 neurons' 128 weights
      fc2 4 (fan-in 16): 1 core, 4 neurons' 16 weights
    -> stored weights 8·18 + 16·36 + 4·2·4 + 16·128 + 4·16 = 144 + 576 + 32 + 2048 + 64 = 2864.
    Configurations of the 4 cores, layers in order: conv1 (8 > 4) in 2 chunks, conv2 in 4,
    pool1 (4) alone, fc1 + fc2 (1 + 1) together: 8 configurations. Every sample pages every
    configuration's weights in. Events crossing a configuration boundary go through DRAM: the
    producer writes its spikes once, and every part of the consumer reads all of them back
    (conv2's 4 chunks read conv1's spikes 4 times); fc1 -> fc2 stays on chip. Layer 1 reads
    the image from DRAM once per part (2 chunks), the readout writes its 4 potentials."""
    sim, result, _ = simulate(tiny_trace, PAGED)
    assert sim.map.n_segments == 8
    assert [[(p.layer_index, p.g0, p.g1) for p in sim.map.segment_parts(s)] for s in range(8)] == [
        [(0, 0, 4)], [(0, 4, 8)], [(1, 0, 4)], [(1, 4, 8)], [(1, 8, 12)], [(1, 12, 16)], [(2, 0, 4)],
        [(3, 0, 1), (4, 0, 1)]]
    with open_trace(tiny_trace) as tr:
        n = tr.n_samples
        spikes = {name: sum(int(tr.spikes(name, i).sum()) for i in range(n)) for name in ("conv1", "conv2", "pool1")}
        image = tr.layer("conv1").n_inputs
    t = result.ledger.totals()
    assert t["dram.weight_read"] == t["synapse_memory.weight_write"] == 2864 * n
    assert t["dram.spike_write"] == spikes["conv1"] + spikes["conv2"] + spikes["pool1"]
    assert t["dram.spike_read"] == 4 * spikes["conv1"] + spikes["conv2"] + spikes["pool1"]
    assert t["dram.input_read"] == 2 * n * image == 2 * n * 128
    assert t["dram.output_write"] == n * 4
    per_layer = {name: result.ledger.layer_counts(name) for name in ("conv1", "conv2", "pool1", "fc1", "fc2")}
    assert [c.get("dram.weight_read", 0) // n for c in per_layer.values()] == [144, 576, 32, 2048, 64]
    assert per_layer["fc2"].get("dram.spike_read", 0) == per_layer["fc1"].get("dram.spike_write", 0) == 0


def test_without_dram_a_model_too_large_for_the_mesh_is_an_error(tiny_trace, tmp_path):
    import yaml
    from sim.arch.spec import SPEC_DIR

    doc = yaml.safe_load((SPEC_DIR / "neuromorphic.yaml").read_text())
    del doc["components"]["dram"]
    doc["components"]["noc"].update(width=2, height=2)
    path = tmp_path / "nodram.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ParameterError, match="components.dram"), open_trace(tiny_trace) as tr:
        Neuromorphic(load_arch_spec(path), Workload(tr))
    res = run_cli("replay", tiny_trace, "--arch", path, "--quiet")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "nodram.yaml" in res.stderr and "components.dram" in res.stderr


def test_zero_capacity_is_rejected_naming_the_field(tiny_trace):
    with pytest.raises(SpecError, match="components.synapse_memory.capacity_bytes"):
        load_arch_spec("neuromorphic", ["components.synapse_memory.capacity_bytes=0"])
    res = run_cli("replay", tiny_trace, "--arch", "neuromorphic", "--set",
                  "components.neuron_memory.capacity_bytes=1", "--quiet")
    assert res.returncode == 2 and "components.neuron_memory.capacity_bytes" in res.stderr


def test_link_loads_and_hop_histogram_add_up_to_the_counted_traffic(tiny_trace):
    sim, result, _ = simulate(tiny_trace, SMALL)
    t = result.ledger.totals()
    noc = result.extra["noc"]
    assert sum(noc["link_flits"]) == t["noc.flit_hop_ew"] + t["noc.flit_hop_ns"]
    hist = np.array(noc["hop_histogram"])
    assert hist.sum() == t["noc.packet"]  # unicast: one packet per (event, destination core)
    assert noc["k_hop"] == pytest.approx((hist * np.arange(len(hist))).sum() / hist.sum())


def hand_bits(key: str, mode: str) -> int:
    """The width of each counted action on the shipped spec, from docs/architectures/neuromorphic.md
    and arch_specs/neuromorphic.yaml: weights 8, SNN membranes 16, ANN partial sums (and the
    SNN's stored input current) 24, the image 8; a spike fired is 1 bit; a packet is one 32-bit
    flit (⌈log2 16⌉ + ⌈log2 8⌉ = 7 header bits + at most ⌈log2 512⌉ = 9 address bits + at most
    8 payload bits = 24 ≤ 32) and so is each flit hop."""
    state = 16 if mode == "snn" else 24
    fixed = {**dict.fromkeys(SYNAPSE_READS, 8), "core.mac": 8, "core.add": 16, "core.fire": 1,
             "core.compare": state, "neuron_memory.state_read": state, "neuron_memory.state_write": state,
             "neuron_memory.membrane_read": 16, "neuron_memory.membrane_write": 16,
             "neuron_memory.current_read": 24, "neuron_memory.current_write": 24,
             "neuron_memory.psum_read": 24, "neuron_memory.psum_write": 24,
             "noc.packet": 32, "noc.flit_hop_ew": 32, "noc.flit_hop_ns": 32,
             "dram.input_read": 8, "dram.output_write": state}
    return fixed[key]


def hand_entries(key: str, table) -> list[str]:
    """The energy-table entries one action costs (docs/architectures/neuromorphic.md, Pricing):
    an entry named ``<class>_<action>`` when the table has one, else the class rule."""
    comp, action = key.split(".")
    if f"{comp}_{action}" in table.entries:
        return [f"{comp}_{action}"]
    if comp in ("synapse_memory", "neuron_memory", "dram"):
        return [f"{comp}_{action.rsplit('_', 1)[1]}"]
    return {"core.add": ["add"], "core.compare": ["compare"], "core.mac": ["mul", "add"], "core.fire": ["spike_out"],
            "noc.packet": ["noc_packet"], "noc.flit_hop_ew": ["noc_hop_ew"], "noc.flit_hop_ns": ["noc_hop_ns"]}[key]


@pytest.mark.parametrize("table", ["paper_v1_45nm", "loihi"])
def test_report_has_the_canonical_noc_totals_and_prices_every_count_by_hand(tiny_trace, table):
    t_e = load_energy_table(table)
    with open_trace(tiny_trace) as tr:
        reports = replay(tr, "neuromorphic", ["snn", "ann"], table, progress=False)
    for rep in reports:
        t = rep["totals"]
        assert t["noc_packets"] == rep["counts"]["noc.packet"] > 0
        assert t["noc_flit_hops"] == rep["counts"]["noc.flit_hop_ew"] + rep["counts"]["noc.flit_hop_ns"]
        # by hand: count x entry energy x action bits / entry bits, summed over the entries
        by_action: dict[str, float] = {}
        for layer in rep["layers"]:
            for key, n in layer["counts"].items():
                bits = hand_bits(key, rep["mode"])
                assert layer["bits"][key] == bits, (rep["mode"], layer["name"], key)
                pj = n * sum(t_e.entries[e].energy_pj * bits / t_e.entries[e].bits for e in hand_entries(key, t_e))
                by_action[key] = by_action.get(key, 0.0) + pj
        assert rep["energy_pj"]["by_action"] == pytest.approx(by_action, rel=1e-12)
        assert rep["energy_pj"]["total"] == pytest.approx(sum(by_action.values()), rel=1e-12)
        assert rep["cycles"] > 0
        assert sum(l["cycles"] for l in rep["layers"]) == rep["cycles"]
        assert all(0.0 <= u <= 1.0 for u in rep["utilisation"].values())
        mapping = rep["extra"]["mapping"]
        assert mapping["cores_used"] >= 1 and "k_hop_static" in mapping
        json.dumps(rep)
    if table == "paper_v1_45nm":  # every core access and flit hop is e_mem = 20 pJ per 8 bits
        e, c = reports[0]["energy_pj"]["by_action"], reports[0]["counts"]
        assert e["noc.flit_hop_ew"] == pytest.approx(20 * 4 * c["noc.flit_hop_ew"])  # 32-bit flits
        assert e["neuron_memory.membrane_read"] == pytest.approx(20 * 2 * c["neuron_memory.membrane_read"])  # 16 bits


def test_workload_totals_match_the_memory_hierarchy(tiny_trace):
    with open_trace(tiny_trace) as tr:
        nm = replay(tr, "neuromorphic", ["snn", "ann"], "paper_v1_45nm", progress=False)
        mh = replay(tr, "memory_hierarchy", ["snn", "ann"], "paper_v1_45nm", progress=False)
    keys = ("synaptic_ops", "spikes_in", "spikes_out", "neuron_updates", "macs")
    for a, b in zip(nm, mh):
        assert {k: a["totals"][k] for k in keys} == {k: b["totals"][k] for k in keys}


@pytest.mark.parametrize("sharing", [True, False])
def test_loihi_prices_a_synaptic_op_at_the_published_figure_of_its_synapse_kind(tiny_trace, sharing):
    """SANA-FE's Loihi synapse units: conv 24.0 pJ, dense 35.5 pJ, sparse 33.6 pJ per op."""
    sim, result, spec = simulate(tiny_trace, [f"mapping.weight_sharing={str(sharing).lower()}"], samples=1)
    rep = build_report(result, spec, load_energy_table("loihi"), {})
    e, c = rep["energy_pj"]["by_action"], rep["counts"]
    conv = "synapse_memory.weight_read" if sharing else "synapse_memory.sparse_weight_read"
    assert c[conv] > 0 and c["synapse_memory.dense_weight_read"] > 0
    assert e[conv] == pytest.approx((24.0 if sharing else 33.6) * c[conv])
    assert e["synapse_memory.dense_weight_read"] == pytest.approx(35.5 * c["synapse_memory.dense_weight_read"])
    assert synaptic_reads(c) == c[conv] + c["synapse_memory.dense_weight_read"]
    assert e["noc.flit_hop_ew"] == pytest.approx(3.0 * rep["counts"]["noc.flit_hop_ew"])
    assert e["noc.flit_hop_ns"] == pytest.approx(4.2 * rep["counts"]["noc.flit_hop_ns"])
    assert e["core.fire"] == pytest.approx(69.3 * rep["counts"]["core.fire"])


def test_plots_write_a_link_load_heat_map_and_a_hop_histogram(tiny_trace, tmp_path):
    from sim.plots.noc import write_plots

    with open_trace(tiny_trace) as tr:
        reports = replay(tr, "neuromorphic", ["snn"], "paper_v1_45nm", samples=1, progress=False)
        reports += replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", samples=1, progress=False)
    files = write_plots(reports, tmp_path / "figs")
    assert sorted(p.name for p in files) == ["neuromorphic_snn_hops.png", "neuromorphic_snn_link_load.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in files)


def test_replay_plot_dir_writes_the_noc_figures(tmp_path):
    from conftest import BUNDLED_TINY

    out = tmp_path / "figs"
    res = run_cli("replay", BUNDLED_TINY, "--arch", "neuromorphic", "--mode", "snn", "--samples", "1",
                  "--quiet", "--plot", out)
    assert res.returncode == 0, res.stderr
    names = {p.name for p in out.iterdir()}
    assert {"neuromorphic_snn_link_load.png", "neuromorphic_snn_hops.png"} <= names


def test_each_barrier_separated_step_pays_the_barrier_once(tiny_trace):
    fast, base, _ = simulate(tiny_trace, SMALL, samples=1)
    sim, slow, _ = simulate(tiny_trace, SMALL + ["components.noc.barrier_cycles=1175"], samples=1)
    assert sim.map.n_segments == 1 and fast.barrier_cycles(0) < 1175  # the spec's table row
    depth = max(p.position for p in sim.map.parts) + 1
    steps = sim.wl.T + depth - 1  # one configuration: a pipeline of T + L - 1 steps
    assert slow.cycles - base.cycles == (1175 - fast.barrier_cycles(0)) * steps


def test_narrower_flits_load_the_links_more_and_never_shorten_a_step(tiny_trace):
    _, wide, _ = simulate(tiny_trace, SMALL, samples=1)
    _, narrow, _ = simulate(tiny_trace, SMALL + ["components.noc.flit_bits=8"], samples=1)
    w, n = wide.ledger.totals(), narrow.ledger.totals()
    assert n["noc.packet"] == w["noc.packet"]
    assert n["noc.flit_hop_ew"] + n["noc.flit_hop_ns"] > w["noc.flit_hop_ew"] + w["noc.flit_hop_ns"]
    assert narrow.cycles >= wide.cycles and narrow.stall_cycles >= wide.stall_cycles
