"""record-model on snnTorch and spikingjelly models (issue 15, item 2): a newcomer's CNN and a
spiking ResNet of each framework, written in their own file, become traces whose spikes are the
ones the framework's neurons emit, whose neuron models are the framework's, and which replay and
validate exactly on every architecture. Skipped when a framework is absent."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import REPO  # noqa: E402
from sim.record.own_model import UnsupportedModelError, record_model  # noqa: E402
from sim.trace import open_trace  # noqa: E402

T = 4

SNNTORCH_SRC = textwrap.dedent('''
    import torch
    from torch import nn
    import snntorch as snn
    from snntorch import surrogate

    grad = surrogate.atan()


    def cnn():
        """The snnTorch tutorial's CNN, pooling after the neuron: the last Leaky is the readout's."""
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), snn.Leaky(beta=0.9, threshold=0.5, spike_grad=grad, init_hidden=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1),
            snn.Leaky(beta=0.7, threshold=0.4, reset_mechanism="zero", init_hidden=True),
            nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
            snn.Leaky(beta=0.9, init_hidden=True, output=True))


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1)
            self.lif1 = snn.Leaky(beta=1.0, threshold=0.4)             # IF, state kept by the module
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
            self.short = nn.Conv2d(c, c, 1, bias=False)
            self.lif2 = snn.Leaky(beta=0.8, threshold=0.5, reset_delay=False)

        def forward(self, x):
            s1, _ = self.lif1(self.conv1(x))
            s2, _ = self.lif2(self.conv2(s1) + self.short(x))           # current addition
            return s2


    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.stem, self.lif0 = nn.Conv2d(1, 4, 3, padding=1), snn.Leaky(beta=0.95, threshold=0.3, init_hidden=True)
            self.block = Block(4)
            self.sew = snn.Leaky(beta=1.0, threshold=1.0, init_hidden=True)
            self.pool = nn.AvgPool2d(2)
            self.lifp = snn.Leaky(beta=1.0, threshold=0.2, init_hidden=True)
            self.fc = nn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            x0 = self.lif0(self.stem(x))
            x1 = self.sew(self.block(x0) + x0)                            # spike addition, re-spiked
            return self.fc(torch.flatten(self.lifp(self.pool(x1)), 1))


    def resnet():
        return ResNet()


    def pool_before_neuron():
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), snn.Leaky(beta=0.9, init_hidden=True),
                             nn.Flatten(), nn.Linear(2 * 3 * 3, 3))


    def synaptic():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), snn.Synaptic(alpha=0.5, beta=0.9, init_hidden=True),
                             nn.Linear(8, 3))
''')

SPIKINGJELLY_SRC = textwrap.dedent('''
    import torch
    from torch import nn
    from spikingjelly.activation_based import functional, layer, neuron, surrogate


    class BasicBlock(nn.Module):
        """Spiking ResNet block: sn2(conv2(sn1(conv1(x))) + shortcut(x)), the shortcut a current."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = layer.Conv2d(cin, cout, 3, stride, 1)
            self.sn1 = neuron.IFNode(surrogate_function=surrogate.ATan())
            self.conv2 = layer.Conv2d(cout, cout, 3, 1, 1)
            self.short = layer.Conv2d(cin, cout, 1, stride, bias=False)
            self.sn2 = neuron.LIFNode(tau=2.0, v_reset=None, surrogate_function=surrogate.ATan())

        def forward(self, x):
            return self.sn2(self.conv2(self.sn1(self.conv1(x))) + self.short(x))


    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(2)
            self.stem = layer.Conv2d(1, 4, 3, 1, 1)
            self.sn0 = neuron.IFNode(v_threshold=0.5)
            self.pool = layer.MaxPool2d(2)
            self.block1 = BasicBlock(4, 4, 1)
            self.block2 = BasicBlock(4, 8, 2)
            self.gap = layer.AvgPool2d(2)
            self.sn3 = neuron.ParametricLIFNode(init_tau=2.0, v_reset=0.0)
            self.flat = layer.Flatten()
            self.fc = layer.Linear(8, 10)

        def forward(self, x):
            x = self.pool(self.sn0(self.stem(x)))
            x = self.block2(self.block1(x))
            return self.fc(self.flat(self.sn3(self.gap(x))))


    def resnet():
        return ResNet()


    def resnet_multistep():
        net = ResNet()
        functional.set_step_mode(net, "m")
        return net


    def sew_add():
        torch.manual_seed(0)

        class Sew(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.s1 = layer.Conv2d(1, 2, 3, padding=1), neuron.IFNode()
                self.c2, self.s2 = layer.Conv2d(2, 2, 3, padding=1), neuron.IFNode()
                self.fc = layer.Linear(2 * 8 * 8, 3)

            def forward(self, x):
                a = self.s1(self.c1(x))
                return self.fc(torch.flatten(self.s2(self.c2(a)) + a, 1))   # SEW ADD: values 0..2
        return Sew()
''')


def _zoo(src, name):
    ns: dict = {"__name__": name}
    exec(compile(src, f"{name}.py", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def snntorch_zoo():
    pytest.importorskip("snntorch")
    return _zoo(SNNTORCH_SRC, "snntorch_models")


@pytest.fixture(scope="module")
def sj_zoo():
    pytest.importorskip("spikingjelly.activation_based.neuron")
    return _zoo(SPIKINGJELLY_SRC, "sj_models")


def _inputs(shape, n=3, seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def _emitted(model, x, steps, neurons):
    """Spikes [n, T, ...] of the named neuron modules, captured here by running the model step by
    step (the framework's own forward), independently of the recorder."""
    out, hooks = {}, []
    mods = dict(model.named_modules())
    for name in neurons:
        def hook(_m, _i, o, name=name):
            out.setdefault(name, []).append((o[0] if isinstance(o, tuple) else o).detach().numpy())
        hooks.append(mods[name].register_forward_hook(hook))
    for name in neurons:   # fresh state
        m = mods[name]
        m.reset_mem() if hasattr(m, "reset_mem") else m.reset()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.as_tensor(x))
    for h in hooks:
        h.remove()
    return {k: np.stack(v, axis=1).astype(bool) for k, v in out.items()}


def _check_spikes(path, emitted, layer_of):
    with open_trace(path) as tr:
        for neuron, layer in layer_of.items():
            for i in range(tr.meta.n_samples):
                assert np.array_equal(tr.spikes(layer, i).reshape(emitted[neuron][i].shape), emitted[neuron][i]), (layer, i)


def test_snntorch_cnn_records_the_spikes_its_leaky_neurons_emit(snntorch_zoo, tmp_path):
    model, x = snntorch_zoo["cnn"](), _inputs((1, 8, 8))
    path = tmp_path / "cnn.h5"
    record_model(model, x, T, path)
    _check_spikes(path, _emitted(model, x, T, ["1", "4"]), {"1": "0", "4": "3"})
    with open_trace(path) as tr:
        got = [(l.name, l.kind, l.inputs, l.output) for l in tr.layers]
        n0, n3 = tr.layer("0").neuron, tr.layer("3").neuron
        assert "final Leaky after the readout" in tr.meta.description
        assert tr.meta.library_versions["snntorch"]
    assert got == [("0", "conv2d", ("input",), "spikes"), ("2", "maxpool", ("0",), "spikes"),
                   ("3", "conv2d", ("2",), "spikes"), ("5", "flatten", ("3",), "passthrough"),
                   ("6", "linear", ("5",), "potential")]
    assert (n0.type, n0.leak, n0.threshold, n0.reset) == ("LIF", pytest.approx(0.9), 0.5, "subtract")
    assert (n3.type, n3.leak, n3.threshold, n3.reset) == ("LIF", pytest.approx(0.7), pytest.approx(0.4), "zero")


def test_snntorch_readout_potential_is_the_last_linear_current_summed_over_T(snntorch_zoo, tmp_path):
    model, x = snntorch_zoo["cnn"](), _inputs((1, 8, 8))
    path = tmp_path / "cnn.h5"
    record_model(model, x, T, path)
    currents = []
    h = model[6].register_forward_hook(lambda _m, _i, o: currents.append(o.detach().numpy()))
    _emitted(model, x, T, ["1", "4", "7"])
    h.remove()
    with open_trace(path) as tr:
        for i in range(len(x)):
            assert np.allclose(tr.potential("6", i), sum(c[i] for c in currents), atol=1e-5)


def test_snntorch_resnet_records_current_and_spike_additions(snntorch_zoo, tmp_path):
    model, x = snntorch_zoo["resnet"](), _inputs((1, 8, 8))
    path = tmp_path / "resnet.h5"
    record_model(model, x, T, path)
    _check_spikes(path, _emitted(model, x, T, ["lif0", "block.lif1", "block.lif2", "sew", "lifp"]),
                  {"lif0": "stem", "block.lif1": "block_conv1", "block.lif2": "add", "sew": "add_1", "lifp": "pool"})
    with open_trace(path) as tr:
        layers = {l.name: l for l in tr.layers}
    assert layers["block_conv2"].output == "current" and layers["block_short"].output == "current"
    assert layers["add"].inputs == ("block_conv2", "block_short") and layers["add"].neuron.type == "LIF"
    assert layers["add_1"].inputs == ("add", "stem") and layers["add_1"].neuron.type == "IF"
    assert layers["block_conv1"].neuron.type == "IF"


@pytest.mark.parametrize("factory,says", [
    ("pool_before_neuron", "put the MaxPool2d after the spiking neuron"),
    ("synaptic", "Synaptic"),
])
def test_snntorch_unsupported_arrangements_are_refused_naming_the_module(snntorch_zoo, factory, says, tmp_path):
    with pytest.raises(UnsupportedModelError, match=says):
        record_model(snntorch_zoo[factory](), _inputs((1, 8, 8)), T, tmp_path / "t.h5")
    assert list(tmp_path.iterdir()) == []


def test_spikingjelly_resnet_records_its_nodes_in_single_step_mode(sj_zoo, tmp_path):
    model, x = sj_zoo["resnet"](), _inputs((1, 8, 8))
    path = tmp_path / "sj.h5"
    record_model(model, x, T, path)
    names = ["sn0", "block1.sn1", "block1.sn2", "block2.sn1", "block2.sn2", "sn3"]
    _check_spikes(path, _emitted(model, x, T, names),
                  {"sn0": "stem", "block1.sn1": "block1_conv1", "block1.sn2": "add",
                   "block2.sn1": "block2_conv1", "block2.sn2": "add_1", "sn3": "gap"})
    with open_trace(path) as tr:
        layers = {l.name: l for l in tr.layers}
    assert layers["pool"].kind == "maxpool" and layers["block2_short"].output == "current"
    add, gap = layers["add"].neuron, layers["gap"].neuron
    assert (add.type, add.leak, add.reset) == ("LIF", 0.5, "subtract")
    assert (gap.type, gap.leak, gap.reset) == ("LIF", pytest.approx(0.5), "zero")
    assert (layers["stem"].neuron.type, layers["stem"].neuron.threshold) == ("IF", 0.5)


def test_spikingjelly_multi_step_mode_gives_the_same_trace(sj_zoo, tmp_path):
    x = _inputs((1, 8, 8))
    single, multi = sj_zoo["resnet"](), sj_zoo["resnet_multistep"]()
    multi.load_state_dict(single.state_dict())
    record_model(single, x, T, tmp_path / "s.h5")
    record_model(multi, x, T, tmp_path / "m.h5")
    with open_trace(tmp_path / "s.h5") as a, open_trace(tmp_path / "m.h5") as b:
        assert [l.to_dict() for l in a.layers] == [l.to_dict() for l in b.layers]
        assert "multi-step" in b.meta.description
        for layer in a.layers:
            for i in range(len(x)):
                if layer.output == "spikes":
                    assert np.array_equal(a.spikes(layer.name, i), b.spikes(layer.name, i))
                elif layer.output == "potential":
                    assert np.allclose(a.potential(layer.name, i), b.potential(layer.name, i), atol=1e-5)
    assert multi.sn0.step_mode == "m"   # the model's own mode is restored


def test_spikingjelly_sew_add_without_a_neuron_is_refused(sj_zoo, tmp_path):
    with pytest.raises(UnsupportedModelError, match="put a spiking neuron after the add"):
        record_model(sj_zoo["sew_add"](), _inputs((1, 8, 8)), T, tmp_path / "t.h5")


def test_rate_encoding_stores_the_input_spikes_the_model_was_driven_by(snntorch_zoo, tmp_path):
    model, x = snntorch_zoo["cnn"](), _inputs((1, 8, 8))
    path = tmp_path / "rate.h5"
    record_model(model, x, T, path, encoding="rate", seed=3)
    with open_trace(path) as tr:
        assert tr.meta.encoding == "rate"
        drive = np.stack([tr.input_spikes("0", i) for i in range(len(x))]).astype(np.float32)
        assert 0 < drive.mean() < 1
        spikes0 = np.stack([tr.spikes("0", i) for i in range(len(x))])
    out = []
    h = model[1].register_forward_hook(lambda _m, _i, o: out.append(o.numpy()))
    model[1].reset_mem()
    model[4].reset_mem()
    model[7].reset_mem()
    with torch.no_grad():
        for t in range(T):
            model(torch.as_tensor(drive[:, t]))
    h.remove()
    assert np.array_equal(spikes0.reshape(len(x), T, -1), np.stack(out, 1).reshape(len(x), T, -1).astype(bool))


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO / "run_sim.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("framework,src,factory", [
    ("snntorch", SNNTORCH_SRC, "cnn"),
    ("spikingjelly", SPIKINGJELLY_SRC, "resnet_multistep"),
])
def test_a_framework_model_file_and_checkpoint_become_a_trace_that_validates_ideal(framework, src, factory, tmp_path):
    pytest.importorskip(framework)
    (tmp_path / "net.py").write_text(src)
    ns = _zoo(src, "net")
    model = ns[factory]()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)   # a "trained" checkpoint that differs from the factory's weights
    torch.save(model.state_dict(), tmp_path / "ckpt.pt")
    out = tmp_path / "t.h5"
    res = _cli("record-model", f"{tmp_path / 'net.py'}:{factory}", "--checkpoint", tmp_path / "ckpt.pt",
               "--dataset", "digits", "--samples", 2, "--T", T, "--out", out)
    assert res.returncode == 0, res.stderr
    first = next(p for n, p in model.named_parameters() if n.endswith("weight"))
    with open_trace(out) as tr:
        assert tr.meta.dataset == "digits" and tr.labels().tolist() != [-1, -1]
        w, scale = tr.weights(tr.layers[0].name)
        assert np.abs(w * scale - first.detach().numpy()).max() <= scale / 2 + 1e-6
    res = _cli("validate", out, "--arch", "all", "--ideal")
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_checkpoint_that_does_not_fit_is_one_line_and_exit_2(snntorch_zoo, tmp_path):
    (tmp_path / "net.py").write_text(SNNTORCH_SRC)
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for ckpt, says in (("bad.pt", "does not fit the model"), ("junk.pt", "not a torch checkpoint"),
                       ("missing.pt", "no such file")):
        res = _cli("record-model", f"{tmp_path / 'net.py'}:cnn", "--checkpoint", tmp_path / ckpt,
                   "--dataset", "digits", "--samples", 1, "--T", 2, "--out", tmp_path / "t.h5")
        assert res.returncode == 2 and says in res.stderr and ckpt in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "t.h5").exists()


def test_event_input_drives_the_model_and_is_stored(snntorch_zoo, tmp_path):
    model = snntorch_zoo["cnn"]()
    events = (np.random.default_rng(5).random((2, T, 1, 8, 8)) < 0.3).astype(np.float32)
    path = tmp_path / "ev.h5"
    record_model(model, events, T, path, encoding="events")
    with open_trace(path) as tr:
        assert tr.meta.encoding == "events" and tr.meta.input_shape == (1, 8, 8)
        assert np.array_equal(np.stack([tr.input_spikes("0", i) for i in range(2)]), events.astype(bool))
        spikes0 = np.stack([tr.spikes("0", i) for i in range(2)])
    out = []
    h = model[1].register_forward_hook(lambda _m, _i, o: out.append(o.numpy()))
    for i in (1, 4, 7):
        model[i].reset_mem()
    with torch.no_grad():
        for t in range(T):
            model(torch.as_tensor(events[:, t]))
    h.remove()
    assert np.array_equal(spikes0.reshape(2, T, -1), np.stack(out, 1).reshape(2, T, -1).astype(bool))
    with pytest.raises(Exception, match="event encoding needs 0/1 spikes"):
        record_model(model, events[:, :2], T, tmp_path / "bad.h5", encoding="events")
    assert not (tmp_path / "bad.h5").exists()
