"""Datasets for training and recording, as in-memory float tensors (N, C, H, W) + int64 labels.

- ``digits``: scikit-learn's bundled 8x8 digits (offline), pixels / 16, a fixed stratified
  split (25 % test, seed 0).
- ``fashion-mnist``: Debian's ``dataset-fashion-mnist`` idx files, each image padded 28 -> 32
  (2 black pixels a side) and replicated to 3 channels, so a network sees exactly CIFAR-10's
  geometry (3x32x32, 10 classes); normalised with the training set's mean and std.
- ``cifar10``: a local CIFAR-10 directory of python-pickle batches (``data_batch_1..5``,
  ``test_batch``), when a user has one; it cannot be downloaded here.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sim.errors import ParameterError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("digits", "fashion-mnist", "cifar10")
#: Per-channel statistics of the training sets (after padding for Fashion-MNIST).
_FMNIST_MEAN, _FMNIST_STD = 0.2190, 0.3318
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass
class Split:
    x: torch.Tensor  # float32 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int | None) -> "Split":
        return self if n is None or n >= len(self) else Split(self.x[:n], self.y[:n])


def load_digits() -> tuple[Split, Split]:
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return _split(xtr, ytr), _split(xte, yte)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(root: str | os.PathLike = FASHION_MNIST_DIR,
                       parts: tuple[str, ...] = ("train", "t10k")) -> tuple[Split, ...]:
    """(train, test) of Fashion-MNIST, or the ``parts`` asked for ("train", "t10k")."""
    root = Path(root)
    out = []
    for part in parts:
        img_path = root / f"{part}-images-idx3-ubyte.gz"
        if not img_path.exists():
            raise ParameterError(str(root), "dataset", "Fashion-MNIST idx files not found "
                                 "(Debian package dataset-fashion-mnist)")
        images = _read_idx(img_path).astype(np.float32) / 255.0
        labels = _read_idx(root / f"{part}-labels-idx1-ubyte.gz").astype(np.int64)
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        images = (images - _FMNIST_MEAN) / _FMNIST_STD
        out.append(_split(np.repeat(images[:, None], 3, axis=1), labels))
    return tuple(out)


def load_cifar10(root: str | os.PathLike) -> tuple[Split, Split]:
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    files = {"train": [root / f"data_batch_{i}" for i in range(1, 6)], "test": [root / "test_batch"]}
    missing = [str(p) for ps in files.values() for p in ps if not p.exists()]
    if missing:
        raise ParameterError(str(root), "dataset", f"not a CIFAR-10 python-pickle directory (missing {missing[0]})")
    mean = np.asarray(_CIFAR_MEAN, np.float32)[:, None, None]
    std = np.asarray(_CIFAR_STD, np.float32)[:, None, None]
    out = []
    for part in ("train", "test"):
        xs, ys = [], []
        for p in files[part]:
            with open(p, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], np.int64))
        x = (np.concatenate(xs).astype(np.float32) / 255.0 - mean) / std
        out.append(_split(x, np.concatenate(ys)))
    return out[0], out[1]


def load_dataset(name: str, root: str | None = None) -> tuple[Split, Split]:
    """(train, test) of a dataset named in :data:`DATASETS`."""
    if name == "digits":
        return load_digits()
    if name == "fashion-mnist":
        return load_fashion_mnist(root or FASHION_MNIST_DIR)
    if name == "cifar10":
        if not root:
            raise ParameterError(None, "--data-dir", "CIFAR-10 cannot be downloaded here: give a local "
                                 "directory of its python-pickle batches")
        return load_cifar10(root)
    raise ParameterError(None, "--dataset", f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def load_test_split(name: str, root: str | None = None) -> Split:
    """The test split of a data set in :data:`DATASETS`, without building its training split
    (Fashion-MNIST's would take about 1.2 GB for a recording that never uses it)."""
    if name == "fashion-mnist":
        return load_fashion_mnist(root or FASHION_MNIST_DIR, ("t10k",))[0]
    return load_dataset(name, root)[1]


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                 torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))
