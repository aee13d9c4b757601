"""The example models (examples/) become traces with one command each and pass validate --ideal
(issue 15 acceptance); skipped when torch or the framework is absent."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cli(capsys, *args) -> tuple[int, str]:
    from sim.cli import main
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@pytest.mark.parametrize("example, factory, framework", [("spikingjelly_resnet", "model", "spikingjelly"),
                                                        ("snntorch_cnn", "model", "snntorch")])
def test_an_example_model_becomes_a_trace_that_validates_exactly(tmp_path, capsys, example, factory, framework):
    pytest.importorskip(framework)
    torch.manual_seed(0)
    net = getattr(_load(example), factory)()
    with torch.no_grad():   # untrained weights, scaled up so that every layer spikes
        for p in net.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    ckpt, out = tmp_path / "ckpt.pt", tmp_path / "trace.h5"
    torch.save(net.state_dict(), ckpt)
    rc, text = _cli(capsys, "record-model", f"{ROOT}/examples/{example}.py:{factory}", "--checkpoint", ckpt,
                    "--dataset", "digits", "--T", 4, "--samples", 3, "--out", out)
    assert rc == 0, text
    rc, text = _cli(capsys, "validate", out, "--arch", "all", "--ideal")
    assert rc == 0 and "RESULT: agree" in text, text


def test_the_spikingjelly_resnet_records_the_same_trace_in_multistep_mode(tmp_path):
    pytest.importorskip("spikingjelly")
    import h5py
    from sim.record.data import load_digits
    from sim.record.own_model import record_model

    mod = _load("spikingjelly_resnet")
    torch.manual_seed(1)
    state = mod.model().state_dict()
    x = load_digits()[1].x[:3].numpy()
    files = []
    for factory in (mod.model, mod.model_multistep):
        net = factory()
        net.load_state_dict(state)
        files.append(tmp_path / f"{factory.__name__}.h5")
        record_model(net, x, 4, files[-1], dataset="digits")
    with h5py.File(files[0]) as a, h5py.File(files[1]) as b:
        names = []
        a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
        assert names and all(np.array_equal(a[n][()], b[n][()]) for n in names)
