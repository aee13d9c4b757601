"""systolic_array against brute force (docs/architectures/systolic_array.md): SCALE-Sim 3's
folding rebuilt demand matrix by demand matrix, every conv's im2col written out tap by tap, the
spike-holding streamed vectors counted one by one, and the simulator against both and against
its closed form, term by term. Counts are integers and agree exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.analytic import systolic_array as closed
from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
from sim.arch.registry import arch_kind
from sim.arch.spec import load_arch_spec
from sim.errors import ParameterError
from sim.mapping.systolic_array import Gemm, fold, gemm, im2col_nonzero, plan, streamed_rows
from sim.replay import count
from sim.trace import LayerSpec, open_trace
from sim.trace.schema import conv_output_hw
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace
from sim.validation.compare import ideal_overrides

from analytic_helpers import write_random_trace
from conftest import REPO

MANY = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
DATAFLOWS = ("ws", "os", "is")
NONIDEAL = tuple(arch_kind("systolic_array").causes)  # every cause its registry row names


# --- SCALE-Sim's systolic_compute_{ws,os,is}, demand matrix by demand matrix ---------------------
NULL = -1


def _skew(mat):
    """SCALE-Sim's skew_matrix: column c delayed by c cycles."""
    rows, cols = len(mat), len(mat[0])
    out = [[NULL] * cols for _ in range(rows + cols - 1)]
    for c in range(cols):
        for r in range(rows):
            out[c + r][c] = mat[r][c]
    return out


def _pad(block, nrows, ncols):
    """``block`` (rows of addresses) padded with null requests to nrows x ncols."""
    out = [list(row) + [NULL] * (ncols - len(row)) for row in block]
    return out + [[NULL] * ncols for _ in range(nrows - len(out))]


def _nulls(n, ncols):
    return [[NULL] * ncols for _ in range(n)]


def _used(mat):
    return sum(1 for row in mat for x in row if x != NULL)


def scalesim_folds(P, F, K, G, R, C, df):
    """G independent GEMMs (P x F by F x K) on an R x C array, run as SCALE-Sim 3 runs them:
    per group, column fold outer, row fold inner, the fold's ifmap, filter and ofmap demand
    matrices (null-padded, skewed, with the load / fill / drain gaps) built explicitly.
    Reads and writes are the non-null demands; a write to an output already written reads the
    partial sum back; a fold's cycles are its demand matrices' rows. (This model reproduces
    SCALE-Sim 3.0.0's own counters on random cases but for its OS rows + cols per fold.)"""
    Sr, Sc, T = {"ws": (F, K, P), "os": (P, K, F), "is": (F, P, K)}[df]
    rf, cf = -(-Sr // R), -(-Sc // C)
    out = dict(ifmap_reads=0, filter_reads=0, ofmap_writes=0, psum_reads=0, compute_cycles=0,
               fold_cycles=[], overhead=[], mapping=[], util=[])
    for g in range(G):
        base = g * (P * F + F * K + P * K)
        ifm = [[base + p * F + f for f in range(F)] for p in range(P)]
        flt = [[base + P * F + f * K + k for k in range(K)] for f in range(F)]
        ofm = [[base + P * F + F * K + p * K + k for k in range(K)] for p in range(P)]
        written = set()
        for fc in range(cf):
            for fr in range(rf):
                rs = range(fr * R, min(Sr, (fr + 1) * R))
                cs = range(fc * C, min(Sc, (fc + 1) * C))
                if df == "ws":
                    i_d = _skew(_nulls(R, R) + _pad([[ifm[p][f] for f in rs] for p in range(P)], P, R)
                                + _nulls(C - 1, R))
                    tile = _pad([[flt[f][k] for k in cs] for f in rs], R, C)   # the stationary weights
                    f_d = tile[::-1] + _nulls(R + C + T - 2, C)
                    span = len(f_d) + C - 1
                    o_d = _skew(_nulls(2 * R - 1, C) + _pad([[ofm[p][k] for k in cs] for p in range(P)], P, C))
                elif df == "os":
                    i_d = _skew(_pad([[ifm[p][f] for p in rs] for f in range(F)], F, R) + _nulls(C - 1, R))
                    f_d = _skew(_pad([[flt[f][k] for k in cs] for f in range(F)], F, C) + _nulls(R - 1, C))
                    tile = _pad([[ofm[p][k] for k in cs] for p in rs], R, C)   # the stationary outputs
                    o_pre = _nulls(T - 1, C) + tile[::-1]
                    span = len(o_pre) + C - 1
                    o_d = _skew(o_pre)
                else:
                    tile = _pad([[ifm[p][f] for p in cs] for f in rs], R, C)   # the stationary inputs
                    i_d = tile[::-1] + _nulls(R + C + T - 2, C)
                    span = len(i_d) + C - 1
                    f_d = _skew(_nulls(R, R) + _pad([[flt[f][k] for f in rs] for k in range(K)], K, R)
                                + _nulls(C - 1, R))
                    o_d = _skew(_nulls(2 * R - 1, C) + _pad([[ofm[p][k] for p in cs] for k in range(K)], K, C))
                assert len(i_d) == len(f_d) == len(o_d)   # the three streams stay in step
                out["ifmap_reads"] += _used(i_d)
                out["filter_reads"] += _used(f_d)
                for x in (x for row in o_d for x in row if x != NULL):
                    out["ofmap_writes"] += 1
                    out["psum_reads"] += x in written
                    written.add(x)
                mapped = _used(tile)
                out["compute_cycles"] += len(i_d)
                out["fold_cycles"].append(len(i_d))
                out["overhead"].append(len(i_d) - T)
                out["mapping"].append(mapped / (R * C))
                out["util"].append(mapped * T / (R * C * span))
    out["folds"] = len(out["fold_cycles"])
    return out


def assert_fold_matches(f, b):
    assert (f.ifmap_reads, f.filter_reads, f.ofmap_writes, f.psum_reads) == \
        (b["ifmap_reads"], b["filter_reads"], b["ofmap_writes"], b["psum_reads"])
    assert f.folds == b["folds"]
    assert f.compute_cycles == b["compute_cycles"] == f.folds * f.fold_cycles
    assert set(b["fold_cycles"]) == {f.fold_cycles} and set(b["overhead"]) == {f.overhead}
    assert f.mapping_efficiency == pytest.approx(sum(b["mapping"]) / b["folds"], rel=1e-12)
    assert f.compute_utilisation == pytest.approx(sum(b["util"]) / b["folds"], rel=1e-12)


@MANY
@given(st.integers(1, 10), st.integers(1, 10), st.integers(1, 10), st.integers(1, 2),
       st.integers(1, 6), st.integers(1, 6), st.sampled_from(DATAFLOWS))
def test_fold_counts_equal_scalesims_demand_matrices_fold_by_fold(P, F, K, G, rows, cols, df):
    f = fold(Gemm(P, F, K, G, 0, 0), rows, cols, df)
    assert_fold_matches(f, scalesim_folds(P, F, K, G, rows, cols, df))


# --- the im2col of a layer, tap by tap ----------------------------------------------------------
def im2col(layer):
    """Per group, per output pixel (row-major), the padded-input coordinate (c, y, x) of each
    fan-in tap in SCALE-Sim's order (filter row, filter column, channel; channel fastest)."""
    C, H, W = layer.input_shape
    K, OH, OW = layer.output_shape
    (r, s), (sh, sw), (dh, dw) = layer.kernel, layer.stride, layer.dilation or (1, 1)
    cin = C // layer.groups
    return [[[(g * cin + c, oy * sh + ky * dh, ox * sw + kx * dw)
              for ky in range(r) for kx in range(s) for c in range(cin)]
             for oy in range(OH) for ox in range(OW)]
            for g in range(layer.groups)]


def brute_gemm(layer):
    """(P, F, K, groups, in_unique): the explicit im2col's shape and the distinct padded-input
    coordinates its windows read; a linear layer is one pixel reading every input."""
    if layer.kind == "linear":
        return 1, layer.n_inputs, layer.output_shape[0], 1, layer.n_inputs
    cols = im2col(layer)
    G, P, F = len(cols), len(cols[0]), len(cols[0][0])
    unique = {tap for group in cols for row in group for tap in row}
    return P, F, layer.output_shape[0] // G, G, len(unique)


def brute_nonzero(layer, spikes):
    """[group][pixel][tap]: the tap's input spikes (a padded tap never does)."""
    if layer.kind == "linear":
        return [[[bool(x) for x in spikes]]]
    C, H, W = layer.input_shape
    ph, pw = layer.padding
    x = spikes.reshape(C, H, W)
    return [[[bool(0 <= y - ph < H and 0 <= xx - pw < W and x[c, y - ph, xx - pw]) for c, y, xx in row]
             for row in group] for group in im2col(layer)]


def brute_streamed(nz, rows, df, col_folds):
    """Per fold (group, column fold, row fold), the streamed vectors holding a spike: WS, per
    row fold and pixel, the pixel's taps of that fold; OS, per row fold of pixels and tap,
    that tap across the fold's pixels."""
    out = []
    for group in nz:
        P, F = len(group), len(group[0])
        per_rf = []
        if df == "ws":
            for fr in range(-(-F // rows)):
                per_rf.append(sum(any(group[p][f] for f in range(fr * rows, min(F, (fr + 1) * rows)))
                                  for p in range(P)))
        else:
            for fr in range(-(-P // rows)):
                per_rf.append(sum(any(group[p][f] for p in range(fr * rows, min(P, (fr + 1) * rows)))
                                  for f in range(F)))
        for _ in range(col_folds):
            out.extend(per_rf)
    return out


@st.composite
def conv_layers(draw):
    """A conv2d with random channels, kernel, stride, padding, dilation and groups."""
    groups = draw(st.integers(1, 3))
    C = groups * draw(st.integers(1, 2))
    K = groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    H = draw(st.integers(max(1, span[0] - 2 * padding[0]), 7))
    W = draw(st.integers(max(1, span[1] - 2 * padding[1]), 7))
    oh, ow = conv_output_hw(H, W, kernel, stride, padding, dilation)
    return LayerSpec("conv", "conv2d", (C, H, W), (K, oh, ow), kernel, stride, padding, groups,
                     dilation=dilation)


@MANY
@given(conv_layers())
def test_gemm_is_the_explicit_im2col_of_the_layer(layer):
    g = gemm(layer)
    assert (g.P, g.F, g.K, g.groups, g.in_unique) == brute_gemm(layer)
    C, H, W = layer.input_shape
    assert g.in_padded == C * (H + 2 * layer.padding[0]) * (W + 2 * layer.padding[1])
    assert g.macs == sum(1 for group in im2col(layer) for row in group for _ in row) * g.K


def test_gemm_of_a_linear_layer_is_one_pixel_and_other_kinds_have_none():
    fc = LayerSpec("fc", "linear", (12,), (5,))
    g = gemm(fc)
    assert (g.P, g.F, g.K, g.groups, g.in_unique, g.in_padded) == (1, 12, 5, 1, 12, 12)
    pool = LayerSpec("pool", "avgpool", (2, 4, 4), (2, 2, 2), (2, 2), (2, 2), (0, 0))
    assert gemm(pool) is None


@MANY
@given(conv_layers(), st.floats(0.0, 0.6), st.integers(0, 2**16), st.integers(1, 5), st.integers(1, 4))
def test_im2col_nonzero_and_streamed_rows_equal_explicit_loops(layer, rate, seed, rows, cols):
    rng = np.random.default_rng(seed)
    spikes = rng.random(layer.n_inputs) < rate
    nz = im2col_nonzero(layer, spikes)
    want = brute_nonzero(layer, spikes)
    assert nz.dtype == bool and nz.tolist() == want
    for df in ("ws", "os"):
        f = fold(gemm(layer), rows, cols, df)
        got = streamed_rows(f, nz)
        assert got.tolist() == brute_streamed(want, rows, df, f.col_folds)
        assert len(got) == f.folds and (got <= f.T).all()


def test_streamed_rows_of_a_linear_layer():
    fc = LayerSpec("fc", "linear", (10,), (7,))
    spikes = np.zeros(10, bool)
    spikes[[1, 8]] = True
    nz = im2col_nonzero(fc, spikes)
    assert nz.shape == (1, 1, 10) and nz.tolist() == brute_nonzero(fc, spikes)
    # WS, 4 rows: fan-in slices [0..3] [4..7] [8..9]; the single pixel streams in slices 0 and 2
    f = fold(gemm(fc), 4, 3, "ws")
    assert streamed_rows(f, nz).tolist() == [1, 0, 1] * 3
    # OS, one row fold (P = 1): two of the ten taps hold a spike, in each of the 3 column folds
    f = fold(gemm(fc), 4, 3, "os")
    assert streamed_rows(f, nz).tolist() == [2, 2, 2]


def test_skip_zero_rows_needs_a_dataflow_that_streams_the_input():
    spec = load_arch_spec("systolic_array", ["mapping.dataflow=is", "mapping.skip_zero_rows=true"])
    layers, _ = model_layers("tiny", 4)
    with pytest.raises(ParameterError) as err:
        plan(spec, layers, 4, "snn", 8)
    assert err.value.field == "mapping.skip_zero_rows" and "systolic_array.yaml" in err.value.file
    with open_trace(REPO / "traces" / "tiny_synth_T4.h5") as tr, pytest.raises(ParameterError) as err:
        count(tr, [spec], ["snn"], 1, progress=False)
    assert err.value.field == "mapping.skip_zero_rows"
    for df in ("ws", "os"):   # the dataflows that stream the input accept it
        plan(load_arch_spec("systolic_array", [f"mapping.dataflow={df}", "mapping.skip_zero_rows=true"]),
             layers, 4, "snn", 8)


# --- corner cases, by hand ---------------------------------------------------------------------
def test_a_gemm_smaller_than_the_array_is_one_partly_mapped_fold():
    f = fold(Gemm(P=5, F=3, K=2, groups=1, in_unique=0, in_padded=0), 4, 4, "ws")   # F < rows, K < cols
    assert (f.row_folds, f.col_folds, f.folds) == (1, 1, 1)
    assert f.mapping_efficiency == pytest.approx(6 / 16)
    assert f.fold_cycles == 2 * 4 + 4 + 5 - 2 and f.compute_cycles == f.fold_cycles
    assert f.compute_utilisation == pytest.approx(6 * 5 / (16 * (2 * 4 + 2 * 4 + 5 - 3)))
    assert (f.ifmap_reads, f.filter_reads, f.ofmap_writes, f.psum_reads) == (15, 6, 10, 0)


def test_a_grouped_conv_runs_its_groups_one_after_another():
    layer = LayerSpec("dw", "conv2d", (4, 3, 3), (4, 3, 3), (3, 3), (1, 1), (1, 1), groups=4)  # depthwise
    g = gemm(layer)
    assert (g.P, g.F, g.K, g.groups, g.in_unique) == (9, 9, 1, 4, 4 * 5 * 5)
    for df in DATAFLOWS:
        one = fold(gemm(LayerSpec("c", "conv2d", (1, 3, 3), (1, 3, 3), (3, 3), (1, 1), (1, 1))), 4, 2, df)
        f = fold(g, 4, 2, df)
        assert f.folds == 4 * one.folds and f.compute_cycles == 4 * one.compute_cycles
        assert (f.ifmap_reads, f.filter_reads, f.ofmap_writes) == \
            (4 * one.ifmap_reads, 4 * one.filter_reads, 4 * one.ofmap_writes)
        assert f.mapping_efficiency == one.mapping_efficiency
        assert_fold_matches(f, scalesim_folds(9, 9, 1, 4, 4, 2, df))


def test_input_stationary_reads_the_input_once_and_the_filters_per_column_fold():
    f = fold(Gemm(P=10, F=7, K=3, groups=1, in_unique=0, in_padded=0), 4, 4, "is")   # Sr=F, Sc=P, T=K
    assert (f.Sr, f.Sc, f.T, f.row_folds, f.col_folds) == (7, 10, 3, 2, 3)
    assert (f.ifmap_reads, f.filter_reads, f.ofmap_writes, f.psum_reads) == (70, 3 * 21, 2 * 30, 30)
    assert f.fold_cycles == 2 * 4 + 4 + 3 - 2


# --- the simulator on small traces ----------------------------------------------------------
@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """The bundled tiny (direct encoding); tiny rate-encoded (the first conv reads spikes); a
    random net with a grouped, strided, dilated conv and two linear layers."""
    d = tmp_path_factory.mktemp("systolic")
    layers, shape = model_layers("tiny", 3)
    write_synthetic_trace(d / "tiny_rate.h5", layers, shape, model="tiny", T=3, n_samples=2, rate=0.15,
                          seed=11, encoding="rate")
    net = [LayerSpec("conv1", "conv2d", (2, 6, 6), (4, 6, 6), (3, 3), (1, 1), (1, 1)),
           LayerSpec("conv2", "conv2d", (4, 6, 6), (6, 3, 4), (3, 2), (2, 1), (1, 0), groups=2,
                     dilation=(1, 2)),
           LayerSpec("flat", "flatten", (6, 3, 4), (72,), output="passthrough"),
           LayerSpec("fc1", "linear", (72,), (5,)),
           LayerSpec("out", "linear", (5,), (3,), output="potential")]
    write_random_trace(d / "grouped.h5", (2, 6, 6), net, 3, 2, seed=5)
    return {"tiny": REPO / "traces" / "tiny_synth_T4.h5", "tiny_rate": d / "tiny_rate.h5", "grouped": d / "grouped.h5"}


def _run(path, overrides, modes, samples=2):
    spec = load_arch_spec("systolic_array", overrides)
    with open_trace(path) as tr:
        return [c.result for c in count(tr, [spec], modes, samples, progress=False)]


@pytest.mark.parametrize("layer_io", ["dram", "on_chip"])
@pytest.mark.parametrize("df", DATAFLOWS)
def test_ann_counts_and_cycles_are_the_geometry_per_sample(traces, df, layer_io):
    for name, (rows, cols) in (("tiny", (4, 3)), ("grouped", (3, 2)), ("tiny", (32, 32))):
        opts = [f"mapping.dataflow={df}", f"mapping.layer_io={layer_io}",
                f"components.pe_array.rows={rows}", f"components.pe_array.cols={cols}"]
        (res,) = _run(traces[name], opts, ["ann"])
        n = res.samples
        with open_trace(traces[name]) as tr:
            comp = [l for l in tr.layers if l.output != "passthrough"]
            for i, l in enumerate(comp):
                if l.kind not in ("conv2d", "linear"):
                    continue
                P, F, K, G, unique = brute_gemm(l)
                b = scalesim_folds(P, F, K, G, rows, cols, df)
                got = res.ledger.layer_counts(l.name)
                want = {"pe_array.mac": P * F * K * G, "ifmap_buffer.input_read": b["ifmap_reads"],
                        "filter_buffer.weight_read": b["filter_reads"],
                        "ofmap_buffer.output_write": b["ofmap_writes"], "dram.weight_read": F * K * G}
                if layer_io == "dram":
                    want.update({"dram.input_read": unique, "dram.output_write": b["ofmap_writes"]})
                else:
                    want.update({"ofmap_buffer.psum_read": b["psum_reads"],
                                 "dram.input_read": unique if i == 0 else 0,
                                 "dram.output_write": l.n_neurons if l.output == "potential" else 0})
                got = {k: got.get(k, 0) for k in (*want, "ifmap_buffer.input_write", "filter_buffer.weight_write")}
                assert {k: got[k] for k in want} == {k: n * v for k, v in want.items()}, (name, l.name)
                assert got["ifmap_buffer.input_write"] == got["dram.input_read"]
                assert got["filter_buffer.weight_write"] == got["dram.weight_read"]
                assert res.extra["compute_cycles"][l.name] == n * b["compute_cycles"], (name, l.name)
                rep = res.extra["plan"][l.name]
                assert (rep["folds"], rep["compute_cycles"]) == (b["folds"], b["compute_cycles"])


def brute_snn(tr, layer, rows, cols, df, samples):
    """A GEMM layer over ``samples`` SNN samples, from the trace's spikes: (compute cycles
    dense, compute cycles with skip_zero_rows, vectors streamed with a spike, synaptic
    events). A layer reading spikes runs its folds every step (skipping, each fold takes its
    overhead plus its streamed vectors holding a spike); one driven by the analog image
    computes its current once and integrates it every step on the cols lanes."""
    P, F, K, G, _ = brute_gemm(layer)
    b = scalesim_folds(P, F, K, G, rows, cols, df)
    cf = -(-{"ws": K, "os": K, "is": P}[df] // cols)
    dense = skipped = streamed = events = 0
    for i in range(samples):
        spikes = tr.input_spikes(layer.name, i)
        if spikes is None:   # the analog image
            c = b["compute_cycles"] + tr.T * -(-layer.n_neurons // cols)
            dense, skipped = dense + c, skipped + c
            continue
        for t in range(tr.T):
            nz = brute_nonzero(layer, spikes[t].reshape(-1))
            vec = brute_streamed(nz, rows, df, cf)
            dense += b["compute_cycles"]
            skipped += sum(o + v for o, v in zip(b["overhead"], vec))
            streamed += sum(vec)
            events += K * sum(x for group in nz for row in group for x in row)   # each spiking tap feeds K filters
    return dense, skipped, streamed, events


@pytest.mark.parametrize("df", ["ws", "os"])
def test_skip_zero_rows_cycles_are_overhead_plus_the_vectors_with_a_spike(traces, df):
    for name, (rows, cols) in (("tiny_rate", (4, 3)), ("grouped", (3, 2)), ("tiny", (5, 4))):
        base = [f"mapping.dataflow={df}", f"components.pe_array.rows={rows}", f"components.pe_array.cols={cols}"]
        (dense,) = _run(traces[name], base, ["snn"])
        (skip,) = _run(traces[name], base + ["mapping.skip_zero_rows=true"], ["snn"])
        assert dict(skip.ledger.counts) == dict(dense.ledger.counts)   # skipping changes no count
        assert dict(skip.ledger.bits) == dict(dense.ledger.bits)
        assert "streamed_rows" not in dense.extra
        n, saved = skip.samples, 0
        with open_trace(traces[name]) as tr:
            T = tr.T
            for l in (l for l in tr.layers if l.kind in ("conv2d", "linear")):
                cyc, cyc_skip, vectors, E = brute_snn(tr, l, rows, cols, df, n)
                assert dense.extra["compute_cycles"][l.name] == cyc, (name, l.name)
                assert skip.extra["compute_cycles"][l.name] == cyc_skip, (name, l.name)
                assert skip.extra["streamed_rows"][l.name] == vectors, (name, l.name)
                saved += cyc - cyc_skip
                if tr.input_spikes(l.name, 0) is None:
                    continue
                # a binary GEMM per step: the ANN's buffer reads at 1 bit, column outputs into membranes
                P, F, K, G, unique = brute_gemm(l)
                b = scalesim_folds(P, F, K, G, rows, cols, df)
                fired = sum(int(tr.spikes(l.name, i).sum()) for i in range(n)) if l.output == "spikes" else 0
                got = skip.ledger.layer_counts(l.name)
                assert (got["ifmap_buffer.spike_read"], got["filter_buffer.weight_read"],
                        got["ofmap_buffer.membrane_read"], got["ofmap_buffer.membrane_write"],
                        got["pe_array.add"], got["dram.spike_read"], got["dram.weight_read"]) == \
                    (n * T * b["ifmap_reads"], n * T * b["filter_reads"], n * T * b["ofmap_writes"],
                     n * T * b["ofmap_writes"], E + n * T * b["ofmap_writes"] + fired, n * T * unique,
                     n * F * K * G), (name, l.name)
            for l in (l for l in tr.layers if l.output != "passthrough" and l.kind not in ("conv2d", "linear")):
                assert skip.extra["compute_cycles"][l.name] == dense.extra["compute_cycles"][l.name]
        assert saved > 0, name   # some vector held no spike


# --- the closed form against the simulator -----------------------------------------------------
def _check_closed_form(tr, overrides, samples=2):
    """Every (dataflow, layer_io, mode): the closed form's counts and widths equal the
    simulator's ledger per layer and key. Returns the non-zero non-ideal terms seen."""
    stats = trace_event_stats(tr, samples)
    seen = {}
    for df in DATAFLOWS:
        for io in ("dram", "on_chip"):
            spec = load_arch_spec("systolic_array", [f"mapping.dataflow={df}", f"mapping.layer_io={io}", *overrides])
            for run in count(tr, [spec], ["snn", "ann"], samples, progress=False):
                pred = closed.predict(spec, tr.layers, stats, tr.T, run.mode, trace_activation_bits(tr))
                led = run.result.ledger
                assert [p.name for p in pred.layers] == led.layers()
                for p in pred.layers:
                    assert p.counts == led.layer_counts(p.name), (df, io, run.mode, p.name)
                    assert p.bits == led.layer_bits(p.name), (df, io, run.mode, p.name)
                    for terms in p.nonideal_terms().values():
                        for cause, v in terms.items():
                            seen[cause] = seen.get(cause, 0) + v
    return seen


SMALL = ["components.pe_array.rows=4", "components.pe_array.cols=3"]
TINY = [f"components.{b}.capacity_bytes=64" for b in ("ifmap_buffer", "filter_buffer", "ofmap_buffer")]
BUNDLED = ["tiny_synth_T4.h5", "tiny_resnet_current_T4.h5"]


@pytest.mark.parametrize("trace", BUNDLED)
def test_closed_form_counts_equal_the_simulators_term_by_term(trace):
    with open_trace(REPO / "traces" / trace) as tr:
        assert _check_closed_form(tr, []) == {}   # the bundled buffers hold everything
        assert _check_closed_form(tr, SMALL) == {}


@pytest.mark.parametrize("trace", BUNDLED)
def test_tiny_buffers_exercise_every_nonideal_term_and_the_closed_form_still_counts_exactly(trace):
    with open_trace(REPO / "traces" / trace) as tr:
        seen = _check_closed_form(tr, SMALL + TINY)
    assert set(seen) == set(NONIDEAL) and all(v > 0 for v in seen.values()), seen


@pytest.mark.parametrize("trace", BUNDLED)
def test_ideal_overrides_remove_every_nonideal_term(trace):
    """The overrides grow the three 64-byte buffers until every non-ideal term is zero; the
    simulator then counts exactly the ideal closed form."""
    with open_trace(REPO / "traces" / trace) as tr:
        stats = trace_event_stats(tr, 2)
        for df in DATAFLOWS:
            opts = [f"mapping.dataflow={df}", *SMALL, *TINY]
            grown = ideal_overrides(load_arch_spec("systolic_array", opts), tr.layers, tr.T,
                                    trace_activation_bits(tr), tr.meta.spike_input)
            assert {o.split("=")[0] for o in grown} == {t.split("=")[0] for t in TINY}
            spec = load_arch_spec("systolic_array", opts + grown)
            for run in count(tr, [spec], ["snn", "ann"], 2, progress=False):
                args = (spec, tr.layers, stats, tr.T, run.mode, trace_activation_bits(tr))
                pred, ideal = closed.predict(*args), closed.predict(*args, ideal=True)
                for p, q in zip(pred.layers, ideal.layers):
                    assert p.nonideal_terms() == {}, (df, run.mode, p.name)
                    assert p.counts == q.counts == run.result.ledger.layer_counts(p.name), (df, run.mode, p.name)
