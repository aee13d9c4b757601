"""record-model: a newcomer's plain-PyTorch SNN, written in its own file, becomes a trace whose
spikes and layer graph are the model's, which replays and validates on every architecture."""

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

#: The newcomer's file: a neuron following the protocol, a small CNN and a spiking ResNet block.
MODELS_SRC = textwrap.dedent('''
    import torch
    from torch import nn


    class Neuron(nn.Module):
        is_spiking_neuron = True

        def __init__(self, threshold=1.0, leak=1.0, reset="subtract"):
            super().__init__()
            self.threshold, self.leak, self.reset_mode = threshold, leak, reset
            self.v = None

        def reset_state(self):
            self.v = None

        def forward(self, x):
            self.v = x if self.v is None else self.leak * self.v + x
            s = (self.v >= self.threshold).float()
            self.v = self.v - s * self.threshold if self.reset_mode == "subtract" else self.v * (1 - s)
            return s


    class CNN(nn.Module):
        def __init__(self, act=None):
            super().__init__()
            torch.manual_seed(0)
            self.conv1, self.n1 = nn.Conv2d(1, 4, 3, padding=1), Neuron(0.5)
            self.conv2, self.n2 = nn.Conv2d(4, 6, 3, padding=1, bias=False), Neuron(0.5, leak=0.9, reset="zero")
            self.act = act
            self.pool = nn.MaxPool2d(2)
            self.flat = nn.Flatten()
            self.fc1, self.n3 = nn.Linear(6 * 4 * 4, 16), Neuron(0.3)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x):
            x = self.n2(self.conv2(self.n1(self.conv1(x))))
            if self.act is not None:
                x = self.act(x)
            return self.fc2(self.n3(self.fc1(self.flat(self.pool(x)))))


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.n1 = nn.Conv2d(c, c, 3, padding=1), Neuron(0.4)
            self.conv2, self.n2 = nn.Conv2d(c, c, 3, padding=1, groups=2), Neuron(0.4)
            self.n_add = Neuron(1.0, leak=0.8)

        def forward(self, x):
            return self.n_add(self.n2(self.conv2(self.n1(self.conv1(x)))) + x)


    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.stem, self.n0 = nn.Conv2d(2, 4, 3, padding=1, stride=2), Neuron(0.3)
            self.block = Block(4)
            self.pool, self.n_pool = nn.AvgPool2d(2), Neuron(0.2)
            self.head = nn.Linear(4 * 2 * 2, 5)

        def forward(self, x):
            x = self.n_pool(self.pool(self.block(self.n0(self.stem(x)))))
            return self.head(torch.flatten(x, 1))


    def cnn():
        return CNN()


    def resnet():
        return ResNet()


    def cnn_gelu():
        return CNN(act=nn.GELU())


    class WithBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.n = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), Neuron()
            self.fc = nn.Linear(2 * 6 * 6, 3)

        def forward(self, x):
            return self.fc(torch.flatten(self.n(self.bn(self.conv(x))), 1))


    def with_bn():
        return WithBN()
''')
T = 4


@pytest.fixture(scope="module")
def zoo():
    ns: dict = {}
    exec(compile(MODELS_SRC, "models.py", "exec"), ns)
    return ns


def _inputs(shape, n=3, seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32) * 2


def _emitted_spikes(model, x, T):
    """Each neuron module's output per step, captured here independently: name -> [n, T, ...]."""
    out, hooks = {}, []
    for name, m in model.named_modules():
        if getattr(type(m), "is_spiking_neuron", False):
            m.reset_state()
            hooks.append(m.register_forward_hook(lambda _m, _i, o, name=name: out.setdefault(name, []).append(o.numpy())))
    with torch.no_grad():
        for _ in range(T):
            model(torch.as_tensor(x))
    for h in hooks:
        h.remove()
    return {k: np.stack(v, axis=1).astype(bool) for k, v in out.items()}


def _record(zoo, factory, shape, tmp_path):
    model, x = zoo[factory](), _inputs(shape)
    path = tmp_path / f"{factory}.h5"
    record_model(model, x, T, path, labels=np.arange(len(x)))
    return model, x, path


def test_the_cnn_trace_holds_the_spikes_the_model_emits(zoo, tmp_path):
    model, x, path = _record(zoo, "cnn", (1, 8, 8), tmp_path)
    emitted = _emitted_spikes(model, x, T)
    layer_of = {"n1": "conv1", "n2": "conv2", "n3": "fc1"}
    with open_trace(path) as tr:
        assert tr.meta.twin_levels == "derived"
        for i in range(len(x)):
            for neuron, layer in layer_of.items():
                assert np.array_equal(tr.spikes(layer, i).reshape(emitted[neuron][i].shape), emitted[neuron][i])
            assert np.array_equal(tr.input(i), x[i])
        assert tr.labels().tolist() == [0, 1, 2]


def test_the_cnn_layer_graph_is_what_the_model_defines(zoo, tmp_path):
    _, _, path = _record(zoo, "cnn", (1, 8, 8), tmp_path)
    with open_trace(path) as tr:
        got = [(l.name, l.kind, l.inputs, l.input_shape, l.output_shape, l.output) for l in tr.layers]
        n2 = tr.layer("conv2").neuron
        w, scale = tr.weights("conv1")
    assert got == [
        ("conv1", "conv2d", ("input",), (1, 8, 8), (4, 8, 8), "spikes"),
        ("conv2", "conv2d", ("conv1",), (4, 8, 8), (6, 8, 8), "spikes"),
        ("pool", "maxpool", ("conv2",), (6, 8, 8), (6, 4, 4), "spikes"),
        ("flat", "flatten", ("pool",), (6, 4, 4), (96,), "passthrough"),
        ("fc1", "linear", ("flat",), (96,), (16,), "spikes"),
        ("fc2", "linear", ("fc1",), (16,), (10,), "potential"),
    ]
    assert (n2.type, n2.threshold, n2.leak, n2.reset) == ("LIF", 0.5, 0.9, "zero")
    assert w.dtype == np.int8 and np.abs(w).max() == 127
    ref = zoo["cnn"]().conv1.weight.detach().numpy()
    assert np.abs(w * scale - ref).max() <= scale / 2 + 1e-7


def test_the_resnet_block_records_its_residual_add(zoo, tmp_path):
    model, x, path = _record(zoo, "resnet", (2, 8, 8), tmp_path)
    emitted = _emitted_spikes(model, x, T)
    with open_trace(path) as tr:
        layers = {l.name: l for l in tr.layers}
        add = layers["add"]
        assert add.kind == "add" and add.inputs == ("block_conv2", "stem")
        assert add.neuron.type == "LIF" and add.neuron.leak == 0.8
        assert layers["block_conv2"].groups == 2
        assert layers["pool"].kind == "avgpool" and layers["pool"].output == "spikes"
        assert layers["head"].inputs == ("flatten",) and layers["head"].output == "potential"
        for i in range(len(x)):
            assert np.array_equal(tr.spikes("add", i).reshape(emitted["block.n_add"][i].shape), emitted["block.n_add"][i])
            assert np.array_equal(tr.spikes("pool", i).reshape(emitted["n_pool"][i].shape), emitted["n_pool"][i])


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO / "run_sim.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("factory,shape", [("cnn", (1, 8, 8)), ("resnet", (2, 8, 8))])
def test_a_model_file_becomes_a_trace_that_replays_and_validates_ideal_on_every_architecture(factory, shape, tmp_path):
    (tmp_path / "models.py").write_text(MODELS_SRC)
    np.save(tmp_path / "x.npy", _inputs(shape))
    out = tmp_path / "t.h5"
    res = _cli("record-model", f"{tmp_path / 'models.py'}:{factory}", "--inputs", tmp_path / "x.npy",
               "--T", T, "--out", out, "--samples", 2)
    assert res.returncode == 0, res.stderr
    res = _cli("replay", out, "--arch", "all", "--mode", "both", "--json", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    res = _cli("validate", out, "--arch", "all", "--ideal")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("factory,named", [("cnn_gelu", "GELU"), ("with_bn", "BatchNorm2d")])
def test_an_unsupported_module_gets_one_line_naming_it_and_nothing_is_written(factory, named, tmp_path):
    (tmp_path / "models.py").write_text(MODELS_SRC)
    np.save(tmp_path / "x.npy", _inputs((1, 8, 8)))
    out = tmp_path / "t.h5"
    res = _cli("record-model", f"{tmp_path / 'models.py'}:{factory}", "--inputs", tmp_path / "x.npy",
               "--T", T, "--out", out)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "supported:" in lines[0]
    assert not out.exists() and list(tmp_path.glob("*.h5*")) == []


@pytest.mark.parametrize("args,says", [
    (["missing.py:cnn"], "no such file"),
    (["{dir}/models.py:nope"], "no such function"),
])
def test_a_missing_file_or_factory_is_one_line_and_exit_2(args, says, tmp_path):
    (tmp_path / "models.py").write_text(MODELS_SRC)
    np.save(tmp_path / "x.npy", _inputs((1, 8, 8)))
    res = _cli("record-model", *[a.format(dir=tmp_path) for a in args], "--inputs", tmp_path / "x.npy",
               "--T", T, "--out", tmp_path / "t.h5")
    assert res.returncode == 2 and says in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.h5").exists()


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "models.py").write_text(MODELS_SRC)
    np.save(tmp_path / "x.npy", np.zeros(5, dtype=np.float32))
    res = _cli("record-model", f"{tmp_path / 'models.py'}:cnn", "--inputs", tmp_path / "x.npy",
               "--T", T, "--out", tmp_path / "t.h5")
    assert res.returncode == 2 and "--inputs" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_api_refuses_a_neuron_after_an_unsupported_function(zoo, tmp_path):
    class Gelu(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.n = torch.nn.Conv2d(1, 2, 3), zoo["Neuron"]()
            self.fc = torch.nn.Linear(2 * 6 * 6, 3)

        def forward(self, x):
            return self.fc(torch.flatten(self.n(torch.nn.functional.gelu(self.conv(x))), 1))

    with pytest.raises(UnsupportedModelError, match="gelu"):
        record_model(Gelu(), _inputs((1, 8, 8)), T, tmp_path / "g.h5")
    assert not list(tmp_path.iterdir())
