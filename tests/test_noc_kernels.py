"""The mesh kernels against brute force: destinations per input element, XY routes, packets,
hops and per-link flits, enumerated one synapse and one link at a time."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.architectures.neuromorphic_mapping import layer_routing
from sim.engine.noc import Mesh
from sim.kernels.noc import element_routes, hop_histogram, route_events, spike_indices
from sim.mapping.neuromorphic import LayerGroups
from sim.trace import LayerSpec
from sim.trace.schema import conv_output_hw

import brute


@st.composite
def layers(draw):
    kind = draw(st.sampled_from(["conv2d", "avgpool", "linear"]))
    if kind == "linear":
        return LayerSpec("fc", "linear", (draw(st.integers(1, 12)),), (draw(st.integers(1, 9)),))
    g = draw(st.sampled_from([1, 2]))
    c, k_out = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 3))
    h, w = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    k, s, p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    oh, ow = conv_output_hw(h, w, (k, k), (s, s), (p, p))
    if oh < 1 or ow < 1:
        k, p = 1, 0
        oh, ow = conv_output_hw(h, w, (1, 1), (s, s), (0, 0))
    if kind == "avgpool":
        return LayerSpec("p", "avgpool", (c, h, w), (c, oh, ow), (k, k), (s, s), (p, p))
    return LayerSpec("c", "conv2d", (c, h, w), (k_out, oh, ow), (k, k), (s, s), (p, p), groups=g)


def random_groups(layer, rng) -> LayerGroups:
    n = layer.n_neurons
    cuts = np.unique(rng.integers(1, n, size=rng.integers(0, min(n, 6)))) if n > 1 else np.array([], int)
    start = np.concatenate([[0], cuts, [n]]).astype(np.int64)
    gon = np.repeat(np.arange(len(start) - 1, dtype=np.int64), np.diff(start))  # the mapping's dtype
    return LayerGroups(layer, gon, np.zeros(len(start) - 1, dtype=np.int64))


def targets_by_input(layer) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, o in brute.synapses(layer):
        out.setdefault(i, []).append(o)
    return out


def union_links(mesh, src, dests) -> set:
    links = set()
    for d in dests:
        links.update(mesh.route(src, d))
    return links


@settings(max_examples=50, deadline=None)
@given(layer=layers(), seed=st.integers(0, 10_000))
def test_each_input_reaches_exactly_the_groups_of_its_targets(layer, seed):
    lg = random_groups(layer, np.random.default_rng(seed))
    r = layer_routing(lg)
    gon = lg.gon
    targets = targets_by_input(layer)
    for i in range(layer.n_inputs):
        p = r.pattern_of_input[i]
        got = dict(zip(r.group[r.ptr[p]:r.ptr[p + 1]].tolist(), r.syn[r.ptr[p]:r.ptr[p + 1]].tolist()))
        want: dict[int, int] = {}
        for o in targets.get(i, []):
            want[int(gon[o])] = want.get(int(gon[o]), 0) + 1
        assert got == want, i


@settings(max_examples=40, deadline=None)
@given(layer=layers(), seed=st.integers(0, 10_000), width=st.integers(1, 5), height=st.integers(1, 4),
       multicast=st.booleans(), flits=st.integers(1, 3), T=st.integers(1, 3))
def test_packets_hops_and_link_loads_equal_brute_force(layer, seed, width, height, multicast, flits, T):
    rng = np.random.default_rng(seed)
    mesh = Mesh(width, height, 1, 1)
    lg = random_groups(layer, rng)
    r = layer_routing(lg)
    # one group per core; groups beyond the mesh, and one more, sit in another segment (-1)
    group_node = np.full(lg.n_groups, -1, dtype=np.int64)
    k = min(lg.n_groups, mesh.n_nodes)
    group_node[:k] = rng.permutation(mesh.n_nodes)[:k]
    if lg.n_groups > 1:
        group_node[rng.integers(0, lg.n_groups)] = -1
    src = rng.integers(0, mesh.n_nodes, size=layer.n_inputs).astype(np.int64)
    routes = element_routes(r.pattern_of_input, src, r.ptr, r.group, group_node, width, multicast)
    spikes = rng.random((T, layer.n_inputs)) < 0.5
    ptr, idx = spike_indices(np.packbits(spikes, axis=1, bitorder="little"), layer.n_inputs)
    ev, pk, ew, ns, syn, longest, core_syn, load = route_events(
        ptr, idx, r.pattern_of_input, src, r.ptr, r.group, r.syn, group_node, *routes, width,
        mesh.n_nodes, flits, multicast)

    gon = lg.gon
    targets = targets_by_input(layer)
    for t in range(T):
        want = dict(pk=0, ew=0, ns=0, syn=0, longest=0)
        want_load = np.zeros(4 * mesh.n_nodes, dtype=np.int64)
        want_core = np.zeros(mesh.n_nodes, dtype=np.int64)
        for i in np.flatnonzero(spikes[t]):
            on_mesh = [o for o in targets.get(i, []) if group_node[gon[o]] >= 0]
            for o in on_mesh:
                want_core[group_node[gon[o]]] += 1
            want["syn"] += len(on_mesh)
            dests = sorted({int(group_node[gon[o]]) for o in on_mesh})
            sx, sy = mesh.xy(int(src[i]))
            for d in dests:
                want["longest"] = max(want["longest"], mesh.hops(int(src[i]), d))
            if multicast:
                links = union_links(mesh, int(src[i]), dests)
                want["pk"] += 1 if dests else 0
                want["ew"] += sum(1 for lk in links if lk % 4 < 2)
                want["ns"] += sum(1 for lk in links if lk % 4 >= 2)
                for lk in links:
                    want_load[lk] += flits
            else:
                want["pk"] += len(dests)
                for d in dests:
                    dx, dy = mesh.xy(d)
                    want["ew"] += abs(dx - sx)
                    want["ns"] += abs(dy - sy)
                    for lk in mesh.route(int(src[i]), d):
                        want_load[lk] += flits
        assert ev[t] == spikes[t].sum()
        assert (pk[t], ew[t], ns[t], syn[t], longest[t]) == (want["pk"], want["ew"], want["ns"], want["syn"],
                                                               want["longest"])
        np.testing.assert_array_equal(load[t], want_load)
        np.testing.assert_array_equal(core_syn[t], want_core)
        assert load[t].sum() == flits * (ew[t] + ns[t])


def test_a_packet_routes_along_x_first_then_y():
    mesh = Mesh(4, 3, 1, 1)
    # (0, 0) -> (2, 2): east twice from (0,0) and (1,0), then south twice from (2,0) and (2,1)
    assert mesh.route(0, mesh.node(2, 2)) == [4 * 0 + 0, 4 * 1 + 0, 4 * 2 + 2, 4 * 6 + 2]
    assert mesh.hops(mesh.node(3, 0), mesh.node(0, 2)) == 5
    assert mesh.n_links == 2 * 3 * 3 + 2 * 4 * 2


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 5), n=st.integers(1, 40), p=st.floats(0, 1), seed=st.integers(0, 1000))
def test_spike_indices_list_the_set_bits_of_each_step(T, n, p, seed):
    spikes = np.random.default_rng(seed).random((T, n)) < p
    ptr, idx = spike_indices(np.packbits(spikes, axis=1, bitorder="little"), n)
    for t in range(T):
        assert idx[ptr[t]:ptr[t + 1]].tolist() == np.flatnonzero(spikes[t]).tolist()


def test_hop_histogram_counts_each_event_destination_pair_by_its_path_length():
    layer = LayerSpec("fc", "linear", (3,), (4,))
    lg = LayerGroups(layer, np.array([0, 0, 1, 1], dtype=np.int64), np.zeros(2, dtype=np.int64))
    r = layer_routing(lg)
    mesh = Mesh(3, 3, 1, 1)
    group_node = np.array([mesh.node(1, 0), mesh.node(2, 2)], dtype=np.int64)
    src = np.zeros(3, dtype=np.int64)  # every input at (0, 0)
    hist = hop_histogram(np.array([2, 0, 1]), r.pattern_of_input, src, r.ptr, r.group, group_node, 3, 4)
    assert hist.tolist() == [0, 3, 0, 0, 3]  # 3 events each reach a core 1 hop and one 4 hops away
