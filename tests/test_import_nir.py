"""import-nir (issue 15, item 3): a NIR graph run step by step in numpy becomes an SNN-only
trace; the dynamics equal an independent brute-force loop, snnTorch -> NIR -> trace equals
snnTorch -> trace spike for spike, a residual graph validates exactly, bad input is one line."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from conftest import REPO, run_cli  # noqa: E402
from sim.record.nir_import import UnsupportedGraphError, complete_types, import_nir  # noqa: E402
from sim.trace import open_trace  # noqa: E402

DT = 1e-4


def _lif(shape, tau, r, thr):
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, r), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))


def _if(shape, r, thr):
    return nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))


def _cuba(shape, tau_syn, tau_mem, r, w_in, thr):
    return nir.CubaLIF(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem), r=np.full(shape, r),
                       v_leak=np.zeros(shape), v_threshold=np.full(shape, thr), v_reset=np.zeros(shape),
                       w_in=np.full(shape, w_in))


def _conv(rng, cin, cout, k, hw, pad, scale=1.0, groups=1):
    return nir.Conv2d(input_shape=hw, weight=rng.normal(0, scale, (cout, cin // groups, k, k)), stride=1,
                      padding=pad, dilation=1, groups=groups, bias=rng.normal(0, 0.1, cout))


# -- (a) the numpy dynamics against an independent brute-force loop ------------------------------
def _chain_graph(rng):
    """Input 2x5x5 -> Conv 3x3 -> LIF (a = 0.8, g = 0.4) -> SumPool 2x2/1 -> IF (r = 0.5)
    -> Flatten -> Affine -> CubaLIF -> Linear readout."""
    nodes = {
        "input": nir.Input(input_type=np.array([2, 5, 5])),
        "conv": _conv(rng, 2, 3, 3, (5, 5), 1, scale=0.8),
        "lif": _lif((3, 5, 5), tau=5 * DT, r=2.0, thr=0.5),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])),
        "if": _if((3, 4, 4), r=0.5, thr=0.7),
        "flat": nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.4, (6, 48)), bias=rng.normal(0, 0.1, 6)),
        "cuba": _cuba((6,), tau_syn=2 * DT, tau_mem=4 * DT, r=3.0, w_in=1.5, thr=0.6),
        "out_fc": nir.Linear(weight=rng.normal(0, 1, (3, 6))),
        "output": nir.Output(output_type=np.array([3])),
    }
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])))


def _brute_force(g, x, T):
    """Element by element, written from NIR's equations with forward Euler (dt = DT)."""
    n = g.nodes
    conv, fc, out_fc = n["conv"], n["fc"], n["out_fc"]
    a_lif, g_lif = 1 - DT / n["lif"].tau.flat[0], DT * n["lif"].r.flat[0] / n["lif"].tau.flat[0]
    c = n["cuba"]
    a_syn, g_syn = 1 - DT / c.tau_syn[0], DT * c.w_in[0] / c.tau_syn[0]
    a_mem, g_mem = 1 - DT / c.tau_mem[0], DT * c.r[0] / c.tau_mem[0]
    v1, v2, i3, v3 = np.zeros((3, 5, 5)), np.zeros((3, 4, 4)), np.zeros(6), np.zeros(6)
    s1_all, s2_all, s3_all, pot = [], [], [], np.zeros(3)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    for _ in range(T):
        s1 = np.zeros((3, 5, 5))
        for o in range(3):
            for yy in range(5):
                for xx in range(5):
                    cur = conv.bias[o] + sum(conv.weight[o, ci, ky, kx] * xp[ci, yy + ky, xx + kx]
                                             for ci in range(2) for ky in range(3) for kx in range(3))
                    v1[o, yy, xx] = a_lif * v1[o, yy, xx] + g_lif * cur
                    if v1[o, yy, xx] > n["lif"].v_threshold.flat[0]:
                        s1[o, yy, xx], v1[o, yy, xx] = 1, 0.0
        s2 = np.zeros((3, 4, 4))
        for o in range(3):
            for yy in range(4):
                for xx in range(4):
                    v2[o, yy, xx] += n["if"].r.flat[0] * s1[o, yy:yy + 2, xx:xx + 2].sum()
                    if v2[o, yy, xx] > n["if"].v_threshold.flat[0]:
                        s2[o, yy, xx], v2[o, yy, xx] = 1, 0.0
        flat = s2.reshape(-1)
        s3 = np.zeros(6)
        for j in range(6):
            i3[j] = a_syn * i3[j] + g_syn * (fc.bias[j] + sum(fc.weight[j, k] * flat[k] for k in range(48)))
            v3[j] = a_mem * v3[j] + g_mem * i3[j]
            if v3[j] > c.v_threshold[j]:
                s3[j], v3[j] = 1, 0.0
        pot += np.array([sum(out_fc.weight[o, j] * s3[j] for j in range(6)) for o in range(3)])
        s1_all.append(s1), s2_all.append(s2), s3_all.append(s3)
    return {"conv": np.array(s1_all, bool), "pool": np.array(s2_all, bool), "fc": np.array(s3_all, bool)}, pot


def test_numpy_dynamics_equal_an_independent_brute_force_loop(tmp_path):
    rng = np.random.default_rng(1)
    g = _chain_graph(rng)
    nir.write(tmp_path / "chain.nir", g)
    x = rng.random((3, 2, 5, 5)).astype(np.float32)
    T = 6
    res = import_nir(tmp_path / "chain.nir", x, T, tmp_path / "t.h5")
    layers = {l.name: l for l in res.layers}
    assert [(l.name, l.kind, l.output) for l in res.layers] == [
        ("conv", "conv2d", "spikes"), ("pool", "avgpool", "spikes"), ("flat", "flatten", "passthrough"),
        ("fc", "linear", "spikes"), ("out_fc", "linear", "potential")]
    # the trace's neuron models: leak 1 - dt/tau, threshold in units of the layer's own output
    assert layers["conv"].neuron.type == "LIF" and layers["conv"].neuron.leak == pytest.approx(0.8)
    assert layers["conv"].neuron.threshold == pytest.approx(0.5 / 0.4)
    assert layers["pool"].neuron.type == "IF" and layers["pool"].neuron.threshold == pytest.approx(0.7 / 0.5 / 4)
    assert layers["fc"].neuron.leak == pytest.approx(0.75) and layers["conv"].neuron.reset == "zero"
    tr = open_trace(tmp_path / "t.h5")
    total = 0
    for i in range(len(x)):
        want, pot = _brute_force(g, x[i].astype(np.float64), T)
        for name, s in want.items():
            assert np.array_equal(tr.spikes(name, i), s), (name, i)
            total += int(s.sum())
        np.testing.assert_allclose(tr.potential("out_fc", i), pot, rtol=1e-5, atol=1e-5)
    assert total > 0 and tr.meta.twin_levels == "derived" and tr.meta.dynamics == "causal"


# -- (b) snnTorch -> NIR -> trace equals snnTorch -> trace ---------------------------------------
def _snntorch_net(beta, reset="zero", reset_delay=False):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)

    def leaky(b):
        return snn.Leaky(beta=b, init_hidden=True, reset_mechanism=reset, reset_delay=reset_delay)

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), leaky(beta[0]),
        torch.nn.AvgPool2d(2), leaky(beta[1]),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 16), leaky(beta[0]),
        torch.nn.Linear(16, 3))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[5].weight.mul_(3)
    return net


def _snntorch_to_nir_file(net, path):
    import torch
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # beta = 1 divides by zero (tau = r = inf) and nirtorch warns
        g = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
        complete_types(g, (1, 8, 8))      # snnTorch's export holds 0-d parameters and unset types
        nir.write(path, g)


def _spikes(path):
    tr = open_trace(path)
    return {l.name: np.stack([tr.spikes(l.name, i) for i in range(tr.meta.n_samples)])
            for l in tr.layers if l.output == "spikes"}


@pytest.mark.parametrize("beta,reset_delay", [((0.9, 0.8), False), ((0.9, 0.8), True), ((1.0, 1.0), False)])
def test_snntorch_to_nir_to_trace_equals_snntorch_to_trace_spike_for_spike(beta, reset_delay, tmp_path):
    net = _snntorch_net(beta, "zero", reset_delay)
    from sim.record.own_model import record_model

    _snntorch_to_nir_file(net, tmp_path / "g.nir")
    x = (np.random.default_rng(0).random((8, 1, 8, 8)) * 1.5).astype(np.float32)
    a = import_nir(tmp_path / "g.nir", x, 10, tmp_path / "nir.h5")
    b = record_model(net, x, 10, tmp_path / "direct.h5")
    assert [(l.name, l.kind, l.output, l.inputs, l.neuron) for l in a.layers] == \
           [(l.name, l.kind, l.output, l.inputs, l.neuron) for l in b.layers]
    sa, sb = _spikes(tmp_path / "nir.h5"), _spikes(tmp_path / "direct.h5")
    assert sa.keys() == sb.keys() == {"0", "2", "5"}
    for name in sa:
        assert np.array_equal(sa[name], sb[name]), name
        assert 0 < sa[name].mean() < 1, name   # a test with spikes in every layer
    ta, tb = open_trace(tmp_path / "nir.h5"), open_trace(tmp_path / "direct.h5")
    for name in ("0", "5", "7"):
        assert np.array_equal(ta.weights(name)[0], tb.weights(name)[0])
    np.testing.assert_allclose(ta.potential("7", 0), tb.potential("7", 0), rtol=1e-5, atol=1e-5)


def test_reset_by_subtraction_does_not_survive_nir(tmp_path):
    """export_to_nir writes every Leaky as a NIR LIF, which resets to v_reset: a 'subtract' model
    exports without complaint and its NIR graph spikes differently (docs/nir.md)."""
    net = _snntorch_net((0.9, 0.8), "subtract", False)
    from sim.record.own_model import record_model

    _snntorch_to_nir_file(net, tmp_path / "g.nir")
    x = (np.random.default_rng(0).random((4, 1, 8, 8)) * 1.5).astype(np.float32)
    import_nir(tmp_path / "g.nir", x, 10, tmp_path / "nir.h5")
    record_model(net, x, 10, tmp_path / "direct.h5")
    sa, sb = _spikes(tmp_path / "nir.h5"), _spikes(tmp_path / "direct.h5")
    assert not np.array_equal(sa["0"], sb["0"])


def test_a_pool_without_a_neuron_before_a_linear_is_refused_as_record_model_refuses_it():
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    with pytest.raises(UnsupportedGraphError, match=r"node '2' \(AvgPool2d\).*no neuron in between"):
        import_nir(g, np.zeros((1, 1, 8, 8), np.float32), 2, "/nonexistent/never_written.h5")


# -- (c) a residual graph validates exactly --------------------------------------------------------
def _residual_graph(rng):
    """conv1 -> LIF A; A -> conv2 and A -> conv3 (1x1): currents summed by LIF R (membrane add);
    R's and A's spikes summed by IF S (spike add); flatten -> Affine readout."""
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 6, 6])),
        "conv1": _conv(rng, 1, 4, 3, (6, 6), 1, scale=1.5),
        "A": _lif((4, 6, 6), tau=10 * DT, r=10.0, thr=1.0),
        "conv2": _conv(rng, 4, 4, 3, (6, 6), 1, scale=0.6),
        "conv3": _conv(rng, 4, 4, 1, (6, 6), 0, scale=0.8),
        "R": _lif((4, 6, 6), tau=5 * DT, r=5.0, thr=0.8),
        "S": _if((4, 6, 6), r=1.0, thr=0.5),
        "flat": nir.Flatten(input_type={"input": np.array([4, 6, 6])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.2, (5, 144)), bias=rng.normal(0, 0.1, 5)),
        "output": nir.Output(output_type=np.array([5])),
    }, edges=[("input", "conv1"), ("conv1", "A"), ("A", "conv2"), ("A", "conv3"), ("conv2", "R"), ("conv3", "R"),
              ("R", "S"), ("A", "S"), ("S", "flat"), ("flat", "fc"), ("fc", "output")])


def test_a_residual_graph_imports_and_validates_ideal_exactly(tmp_path):
    rng = np.random.default_rng(3)
    nir.write(tmp_path / "res.nir", _residual_graph(rng))
    np.save(tmp_path / "x.npy", rng.random((4, 1, 6, 6)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(4))
    out = tmp_path / "res.h5"
    res = run_cli("import-nir", tmp_path / "res.nir", "--inputs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                  "--T", 5, "--out", out, "--samples", 3, "--dataset", "toy")
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "R:add" in res.stdout
    tr = open_trace(out)
    got = [(l.name, l.kind, l.output, tuple(l.inputs)) for l in tr.layers]
    assert got == [("conv1", "conv2d", "spikes", ("input",)), ("conv2", "conv2d", "current", ("conv1",)),
                   ("conv3", "conv2d", "current", ("conv1",)), ("R", "add", "spikes", ("conv2", "conv3")),
                   ("S", "add", "spikes", ("R", "conv1")), ("flat", "flatten", "passthrough", ("S",)),
                   ("fc", "linear", "potential", ("flat",))]
    assert tr.meta.n_samples == 3 and tr.meta.dataset == "toy" and list(tr.labels()) == [0, 1, 2]
    for name in ("conv1", "R", "S"):
        rate = np.mean([tr.spikes(name, i).mean() for i in range(3)])
        assert 0 < rate < 1, name
    res = run_cli("validate", out, "--arch", "all", "--ideal")
    assert res.returncode == 0, res.stdout + res.stderr


def test_import_nir_needs_no_torch(tmp_path):
    rng = np.random.default_rng(3)
    nir.write(tmp_path / "res.nir", _residual_graph(rng))
    np.save(tmp_path / "x.npy", rng.random((1, 1, 6, 6)).astype(np.float32))
    code = ("import sys, numpy as np\n"
            "sys.modules['torch'] = None  # importing torch now fails\n"
            "from sim.record.nir_import import import_nir\n"
            f"import_nir({str(tmp_path / 'res.nir')!r}, np.load({str(tmp_path / 'x.npy')!r}), 3, "
            f"{str(tmp_path / 't.h5')!r})\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "t.h5").exists()


# -- (d) bad input: one line, exit 2, nothing written -----------------------------------------------
def _assert_refused(res, out, *needles):
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_bad_input_is_one_line_exit_2_and_nothing_is_written(tmp_path):
    import h5py

    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", rng.random((2, 2, 5, 5)).astype(np.float32))
    out = tmp_path / "t.h5"
    args = ("--inputs", tmp_path / "x.npy", "--T", 3, "--out", out)
    # a node type the nir package itself does not know
    nir.write(tmp_path / "unknown.nir", _chain_graph(rng))
    with h5py.File(tmp_path / "unknown.nir", "r+") as f:
        del f["node/nodes/if/type"]
        f["node/nodes/if"].create_dataset("type", data="Spiky", dtype=h5py.string_dtype())
    _assert_refused(run_cli("import-nir", tmp_path / "unknown.nir", *args), out, "node 'if'", "Spiky")
    # a NIR node type import-nir does not support
    g = _chain_graph(rng)
    g.nodes["if"] = nir.Delay(delay=np.ones((3, 4, 4)))
    nir.write(tmp_path / "delay.nir", g)
    _assert_refused(run_cli("import-nir", tmp_path / "delay.nir", *args), out, "node 'if' (Delay)",
                    "unsupported", "supported NIR nodes")
    # a missing file
    _assert_refused(run_cli("import-nir", tmp_path / "missing.nir", *args), out, "missing.nir", "no such file")
    # inputs of the wrong shape
    nir.write(tmp_path / "ok.nir", _chain_graph(rng))
    np.save(tmp_path / "x3.npy", rng.random((2, 3, 5, 5)).astype(np.float32))
    _assert_refused(run_cli("import-nir", tmp_path / "ok.nir", "--inputs", tmp_path / "x3.npy", "--T", 3,
                            "--out", out), out, "inputs", "[3, 5, 5]", "Input node 'input' [2, 5, 5]")


@pytest.mark.parametrize("change,says", [
    (lambda g: setattr(g.nodes["lif"], "v_reset", np.full((3, 5, 5), 0.1)), "node 'lif' (LIF): v_reset"),
    (lambda g: setattr(g.nodes["lif"], "v_leak", np.full((3, 5, 5), 0.1)), "node 'lif' (LIF): v_leak"),
    (lambda g: g.nodes["lif"].tau.__setitem__((0, 0, 0), 1.0), "node 'lif' (LIF): tau differs between neurons"),
    (lambda g: setattr(g.nodes["lif"], "tau", np.full((3, 5, 5), DT / 2)), "leak factor"),
    (lambda g: setattr(g.nodes["conv"], "padding", "same"), None),    # symmetric 'same' is supported
    (lambda g: setattr(g.nodes["flat"], "start_dim", 1), "node 'flat' (Flatten): flattens dims 1..-1"),
    (lambda g: g.edges.append(("input", "pool")), "node 'pool' (SumPool2d): sums 2 incoming edges"),
    (lambda g: g.edges.append(("lif", "if")), "node 'if' (IF): sums inputs of different shapes"),
    (lambda g: g.edges.append(("out_fc", "fc")), "lies on a cycle"),
])
def test_what_the_trace_cannot_express_is_refused_naming_the_node(change, says, tmp_path):
    rng = np.random.default_rng(1)
    g = _chain_graph(rng)
    change(g)
    x = rng.random((1, 2, 5, 5)).astype(np.float32)
    out = tmp_path / "t.h5"
    if says is None:
        import_nir(g, x, 2, out)
        assert out.exists()
        return
    with pytest.raises(UnsupportedGraphError) as err:
        import_nir(g, x, 2, out)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []
