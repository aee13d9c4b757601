#!/usr/bin/env python3
"""Re-write format-1 traces as format 2 (with checksums), every dataset and attribute unchanged.

    python traces/add_checksums.py traces/tiny_synth_T4.h5 traces/digits_snn_T6.h5 traces/vgg16_fmnist_T6.h5

For each file: read it with the reader (validated), write it again with ``TraceWriter`` (same
metadata, layers, weights and samples; the writer adds the checksums and verifies the file with
the reader), then compare the two files with plain h5py: every dataset of the old file must have
the same dtype, shape and bytes in the new one, and every attribute the same type and value,
except ``format_version`` (1 -> 2); the new file may only add the attributes format 2 defines
(``twin_levels``, ``meta_sha256``, per dataset ``sha256``, ``weight.range``). Then the per-layer
spike counts, non-zero levels and level sums of both files must be equal. Only then does the new
file replace the old one. Nothing here is needed to run the simulator.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.trace import TraceWriter, open_trace  # noqa: E402
from sim.trace.stats import layer_stats  # noqa: E402

ADDED_ROOT = {"twin_levels", "meta_sha256"}
ADDED_DATASET = {"sha256"}
ADDED_WEIGHT = {"range"}


def rewrite(src: Path, dst: Path) -> None:
    """Write ``src`` again as format 2 at ``dst``."""
    with open_trace(src) as tr:
        if tr.format_version != 1:
            raise SystemExit(f"{src}: already format {tr.format_version}")
        with TraceWriter(dst, tr.meta, tr.layers, with_input=tr.has_input) as w:
            for layer in tr.layers:
                stored = tr.weights(layer.name)
                if stored is not None:
                    w.set_weights(layer.name, stored[0], stored[1], tr.bias(layer.name))
            labels = tr.labels()
            for i in range(tr.n_samples):
                spikes = {l.name: tr.spikes(l.name, i) for l in tr.layers if l.output == "spikes"}
                levels = {name: tr.activations(name, i) for name in spikes}
                readouts = [l.name for l in tr.layers if l.output == "potential"]
                pots = {n: v for n in readouts if (v := tr.potential(n, i)) is not None}
                anns = {n: v for n in readouts if (v := tr.ann_output(n, i)) is not None}
                w.write_sample(i, label=int(labels[i]), input=tr.input(i) if tr.has_input else None,
                               spikes=spikes, activations=levels, potentials=pots, ann_outputs=anns)


def _same_value(a, b) -> bool:
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        return type(a) is type(b) and a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "O":
        return a.tolist() == b.tolist()
    return a.tobytes() == b.tobytes()


def differences(old_path: Path, new_path: Path) -> list[str]:
    """Every dataset or attribute of the old file that the new one lacks or changes, and every
    addition that format 2 does not define."""
    out: list[str] = []
    with h5py.File(old_path, "r") as old, h5py.File(new_path, "r") as new:
        objects = [("/", old["/"])]
        old.visititems(lambda name, obj: objects.append((name, obj)))
        for name, obj in objects:
            if name not in new:
                out.append(f"{name}: missing")
                continue
            other = new[name]
            if isinstance(obj, h5py.Dataset):
                a, b = obj[()], other[()]
                if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                    out.append(f"{name}: data differs")
            for key, value in obj.attrs.items():
                if key not in other.attrs:
                    out.append(f"{name}.{key}: missing")
                elif key == "format_version" and name == "/":
                    if (int(value), int(other.attrs[key])) != (1, 2):
                        out.append(f"/.format_version: {value} -> {other.attrs[key]}")
                elif not _same_value(value, other.attrs[key]):
                    out.append(f"{name}.{key}: {value!r} -> {other.attrs[key]!r}")
            allowed = ADDED_ROOT if name == "/" else ADDED_DATASET | (ADDED_WEIGHT if name.endswith("/weight") else set())
            out += [f"{name}.{key}: unexpected new attribute" for key in other.attrs
                    if key not in obj.attrs and key not in allowed]
        added = []
        new.visititems(lambda name, obj: added.append(name) if name not in old else None)
        out += [f"{name}: unexpected new object" for name in added]
    return out


def counts(path: Path) -> list[tuple]:
    with open_trace(path) as tr:
        return [(s.name, s.spike_count, s.nonzero_acts, s.level_sum) for s in layer_stats(tr)]


def main(paths: list[str]) -> int:
    for text in paths:
        src = Path(text)
        dst = src.with_name(f".{src.name}.v2.tmp")
        try:
            rewrite(src, dst)
            diff = differences(src, dst)
            if diff:
                raise SystemExit(f"{src}: the rewrite changed the content:\n  " + "\n  ".join(diff[:20]))
            before, after = counts(src), counts(dst)
            if before != after:
                raise SystemExit(f"{src}: counts changed: {before} -> {after}")
            with open_trace(dst) as tr:
                tr.verify()
            os.replace(dst, src)
        finally:
            if dst.exists():
                dst.unlink()
        print(f"{src}: format 2, {sum(c[1] for c in after)} spikes in {len(after)} layers, unchanged "
              f"({src.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
