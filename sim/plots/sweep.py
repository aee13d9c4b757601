"""Plots of a sweep directory (matplotlib, Agg backend, headless PNGs, each written whole).

Only finished points are plotted (a point file that fails its checks is left out and named);
a sweep with none is an error, before any file is written."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sim.errors import ParameterError
from sim.studies.sweep_points import (PLOTS_DIR, SweepState, atomic_file, check_layout, read_manifest,
                                      scan_points)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (latency, energy), both minimised, sorted by latency."""
    front, best = [], float("inf")
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def missing_text(state: SweepState) -> str:
    """How many of the sweep's points are not plotted and why, naming the first damaged file."""
    parts = []
    if state.missing:
        parts.append(f"{len(state.missing)} not finished (failed or not run yet)")
    if state.rejected:
        path, problem = state.rejected[0]
        more = f" and {len(state.rejected) - 1} more" if len(state.rejected) > 1 else ""
        parts.append(f"{len(state.rejected)} rejected: {path}: {problem}{more}")
    return "; ".join(parts)


def plot_sweep(directory: str) -> tuple[list[Path], str | None]:
    """Write one PNG per swept field plus the Pareto front of the finished points; returns
    their paths and, for a partial sweep, a one-line warning saying how many points are
    missing. ParameterError (nothing written) when no point is finished."""
    d = Path(directory)
    state = scan_points(d, read_manifest(d))
    check_layout(d, "plot-sweep")
    manifest, results = state.manifest, state.finished
    total = len(manifest["points"])
    if not results:
        raise ParameterError(directory, None, f"no finished point to plot (of {total}: {missing_text(state)})")
    note = None
    if len(results) < total:
        note = f"warning: {directory}: plotted {len(results)} of {total} points; {missing_text(state)}"
    plt = _plt()
    out_dir = d / PLOTS_DIR
    out_dir.mkdir(exist_ok=True)
    written = []
    keys = [k for k, _ in manifest["grid"]]
    modes = manifest["modes"]
    for key in keys:
        others = [k for k in keys if k != key]
        fig, axes = plt.subplots(2, len(modes), figsize=(6 * len(modes), 8), squeeze=False)
        for col, mode in enumerate(modes):
            series = defaultdict(list)
            for r in results:
                run = next(x for x in r["runs"] if x["mode"] == mode)
                label = ", ".join(f"{k}={r['params'][k]}" for k in others)
                series[label].append((r["params"][key], run))
            ax_e, ax_c = axes[0][col], axes[1][col]
            for label, pts in series.items():
                pts.sort(key=lambda p: p[0])
                xs = [p[0] for p in pts]
                comps = sorted({c for _, run in pts for c in run["energy_pj"]["by_component"]})
                if len(series) == 1:  # one series: stack the components
                    bottom = [0.0] * len(xs)
                    for comp in comps:
                        ys = [run["energy_pj"]["by_component"].get(comp, 0) / run["samples"] / 1e6 for _, run in pts]
                        ax_e.fill_between(xs, bottom, [b + y for b, y in zip(bottom, ys)], label=comp, alpha=0.7, step=None)
                        bottom = [b + y for b, y in zip(bottom, ys)]
                    ax_e.plot(xs, bottom, "k.-", lw=1)
                else:
                    ax_e.plot(xs, [run["per_sample"]["energy_pj"] / 1e6 for _, run in pts], "o-", label=label)
                ax_c.plot(xs, [run["per_sample"]["cycles"] for _, run in pts], "o-", label=label or mode)
            for ax in (ax_e, ax_c):
                ax.set_xscale("log", base=2)
                ax.set_xlabel(key)
                ax.grid(alpha=0.3)
            ax_e.set_ylabel("energy per sample (µJ)")
            ax_e.set_title(f"{mode.upper()}: energy by component")
            ax_c.set_ylabel("cycles per sample")
            ax_c.set_title(f"{mode.upper()}: latency")
            ax_e.legend(fontsize=8)
            ax_c.legend(fontsize=8)
        fig.suptitle(f"{manifest['arch']} sweep over {key} ({Path(manifest['trace']).name})")
        fig.tight_layout()
        path = out_dir / f"sweep_{key.replace('.', '_')}.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(7, 5))
    for mode, marker in zip(modes, "os"):
        pts = [(next(x for x in r["runs"] if x["mode"] == mode)["per_sample"]["cycles"],
                next(x for x in r["runs"] if x["mode"] == mode)["per_sample"]["energy_pj"] / 1e6) for r in results]
        ax.scatter(*zip(*pts), marker=marker, alpha=0.5, label=f"{mode.upper()} points")
        front = pareto_front(pts)
        ax.plot(*zip(*front), "-", marker=marker, label=f"{mode.upper()} Pareto front")
    ax.set_xlabel("cycles per sample")
    ax.set_ylabel("energy per sample (µJ)")
    ax.set_title("energy-latency Pareto front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = out_dir / "pareto.png"
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    written.append(path)
    return written, note


def _save(fig, path: Path) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
