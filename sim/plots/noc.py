"""Figures of a replay report (``replay --plot DIR``): per-link NoC load heat maps and the
hop histogram. Headless: matplotlib's Agg backend, PNG files, nothing shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIRECTIONS = ("east", "west", "south", "north")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def link_load_figure(noc: dict, title: str, path: Path) -> None:
    """One panel per link direction: flits that left each router that way, over the run."""
    plt = _pyplot()
    w, h = noc["mesh"]
    grid = np.asarray(noc["link_flits"], dtype=np.int64).reshape(h, w, 4).transpose(2, 0, 1)
    vmax = max(1, int(grid.max()))
    fig, axes = plt.subplots(2, 2, figsize=(2 + 0.45 * w * 2, 1.5 + 0.45 * h * 2), squeeze=False)
    for d, ax in enumerate(axes.flat):
        im = ax.imshow(grid[d], cmap="viridis", vmin=0, vmax=vmax, origin="upper")
        ax.set_title(f"{DIRECTIONS[d]}-bound links")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        fig.colorbar(im, ax=ax, label="flits")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def hop_histogram_figure(noc: dict, title: str, path: Path) -> None:
    """Delivered (event, destination core) pairs by XY path length in hops."""
    plt = _pyplot()
    hist = np.asarray(noc["hop_histogram"], dtype=np.int64)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(np.arange(len(hist)), hist, color="tab:blue")
    ax.set_xlabel("hops (XY path length)")
    ax.set_ylabel("deliveries")
    ax.set_title(f"{title}  (k_hop = {noc['k_hop']:.2f})")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def write_plots(reports: list[dict], out_dir, temp=None) -> list[Path]:
    """Figures for every report that carries NoC data into the existing directory
    ``out_dir``; returns their destinations. ``temp(dest)`` gives the path to write each to
    (a temporary renamed later, :class:`sim.report.output.Outputs`); default: ``dest``."""
    out = Path(out_dir)
    if temp is None:
        out.mkdir(exist_ok=True)  # called directly: the directory itself, never its parents
    written = []
    for rep in reports:
        noc = rep.get("extra", {}).get("noc")
        if not noc:
            continue
        stem = f"{rep['arch']['name']}_{rep['mode']}"
        title = f"{rep['arch']['name']} {rep['mode'].upper()}: {rep['trace'].get('model')}, T={rep['trace'].get('T')}"
        for suffix, draw in (("link_load", link_load_figure), ("hops", hop_histogram_figure)):
            path = out / f"{stem}_{suffix}.png"
            draw(noc, title, temp(path) if temp else path)
            written.append(path)
    return written
