"""Stacked energy bars: one bar per (architecture, mode), split by component, per sample.

Headless (matplotlib's Agg backend). ``replay --plot FILE.png`` writes the figure there;
``--plot DIR`` writes ``DIR/energy_breakdown.png``.
"""

from __future__ import annotations

from pathlib import Path

ENERGY_PLOT_NAME = "energy_breakdown.png"


def energy_plot_path(target: str | Path) -> Path:
    """Where ``--plot TARGET`` puts the stacked energy bars: TARGET itself when it ends in
    ``.png``, else ``TARGET/energy_breakdown.png``."""
    target = Path(target)
    return target if target.suffix.lower() == ".png" else target / ENERGY_PLOT_NAME


def energy_breakdown(reports: list[dict]) -> tuple[list[str], dict[str, list[float]]]:
    """Bar labels ("arch\\nMODE") and, per component, its energy per sample (µJ) in each bar."""
    labels = [f"{r['arch']['name']}\n{r['mode'].upper()}" for r in reports]
    components: list[str] = []
    for r in reports:
        for comp in r["energy_pj"]["by_component"]:
            if comp not in components:
                components.append(comp)
    stacks = {c: [r["energy_pj"]["by_component"].get(c, 0.0) / r["samples"] / 1e6 for r in reports]
              for c in components}
    return labels, stacks


def _unit(peak_uj: float) -> tuple[str, float]:
    """A readable unit for energies whose largest bar is ``peak_uj`` µJ."""
    for name, scale in (("J", 1e6), ("mJ", 1e3), ("µJ", 1.0)):
        if peak_uj >= scale:
            return name, scale
    return "nJ", 1e-3


def plot_energy_breakdown(reports: list[dict], path: str | Path, ratios: dict[str, float] | None = None) -> Path:
    """Write the stacked energy bars of ``reports`` to ``path`` (PNG); returns the path.

    Left: energy per sample. Right: the same bars divided by the energy of the same
    architecture's ANN run (when there is one), so small architectures stay readable."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, stacks = energy_breakdown(reports)
    totals = [sum(v[k] for v in stacks.values()) for k in range(len(labels))]
    unit, scale = _unit(max(totals) if totals else 0.0)
    ann = {r["arch"]["name"]: t for r, t in zip(reports, totals) if r["mode"] == "ann" and t > 0}
    relative = all(r["arch"]["name"] in ann for r in reports)
    panels = 2 if relative else 1
    width = max(6.0, 1.3 * len(labels) + 1.5)
    fig, axes = plt.subplots(1, panels, figsize=(width * panels * 0.8 + 2, 4.8), dpi=120, squeeze=False)
    cmap = plt.get_cmap("tab20")
    colours = {c: cmap(i % 20) for i, c in enumerate(sorted(stacks))}
    for p, ax in enumerate(axes[0]):
        norm = [ann[r["arch"]["name"]] if p == 1 else scale for r in reports]
        bottom = [0.0] * len(labels)
        for comp in sorted(stacks):
            values = [v / n for v, n in zip(stacks[comp], norm)]
            ax.bar(labels, values, bottom=bottom, label=comp, color=colours[comp], edgecolor="white", linewidth=0.5)
            bottom = [b + v for b, v in zip(bottom, values)]
        for x, (r, top) in enumerate(zip(reports, bottom)):
            text = f"{top:.2f}" if p == 1 else f"{top:.3g}"
            ratio = (ratios or {}).get(r["arch"]["name"])
            if p == 0 and ratio is not None and r["mode"] == "snn":
                text += f"\nSNN/ANN {ratio:.2f}"
            ax.annotate(text, (x, top), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        ax.set_ylabel(f"energy per sample ({unit})" if p == 0 else "energy / same architecture's ANN")
        ax.set_ylim(0, max(bottom) * 1.2 if max(bottom) > 0 else 1)
        ax.tick_params(axis="x", labelsize=8)
    first = reports[0]
    fig.suptitle(f"{first['trace'].get('model')}, T={first['trace'].get('T')}, "
                 f"energy table {first['energy_table']}", fontsize=10)
    axes[0][-1].legend(title="component", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")  # path may be a temporary the caller renames
    plt.close(fig)
    return path
