"""Data loaders: digits offline, Fashion-MNIST in CIFAR-10 geometry, a local CIFAR-10 directory."""

import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sim.errors import ParameterError  # noqa: E402
from sim.record.data import FASHION_MNIST_DIR, load_cifar10, load_dataset, load_digits  # noqa: E402


def test_digits_split_is_fixed_and_scaled_to_unit_range():
    train, test = load_digits()
    assert train.x.shape == (1347, 1, 8, 8) and test.x.shape == (450, 1, 8, 8)
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    assert torch.equal(load_digits()[1].y, test.y)
    assert sorted(set(test.y.tolist())) == list(range(10))


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_has_cifar10_geometry():
    train, test = load_dataset("fashion-mnist")
    assert train.x.shape == (60000, 3, 32, 32) and test.x.shape == (10000, 3, 32, 32)
    assert torch.equal(test.x[:, 0], test.x[:, 2])                      # replicated channels
    border = test.x[:, 0, :2, :]                                         # the 2-pixel padding
    assert torch.allclose(border, border.flatten()[0].expand_as(border))
    assert abs(float(train.x.mean())) < 0.01 and abs(float(train.x.std()) - 1) < 0.01


def test_local_cifar10_python_batches_are_read(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (root / name).write_bytes(pickle.dumps(batch))
    train, test = load_cifar10(tmp_path)
    assert train.x.shape == (20, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert test.y.tolist() == [0, 1, 2, 3]


def test_cifar10_needs_a_local_directory(tmp_path):
    with pytest.raises(ParameterError, match="cannot be downloaded"):
        load_dataset("cifar10")
    with pytest.raises(ParameterError, match="data_batch_1"):
        load_dataset("cifar10", str(tmp_path))
