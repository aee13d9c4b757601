"""Figures of ``validate`` and ``breakeven`` (matplotlib, Agg backend)."""

from __future__ import annotations


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    """Write ``fig`` as PNG to ``path`` (a temporary the caller renames; any suffix)."""
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)


def plot_validation(doc: dict, dest: str) -> None:
    """Left: counted vs ideal closed form per term (log-log, identity line), one colour per
    architecture, SNN dots and ANN crosses. Right: residual energy by cause per run (pJ)."""
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    archs = list(dict.fromkeys(r["architecture"] for r in doc["runs"]))
    lo, hi = float("inf"), 0.0
    for run in doc["runs"]:
        pts = [(r["predicted"], r["counted"]) for r in run["terms"] if r["predicted"] > 0 and r["counted"] > 0]
        if not pts:
            continue
        x, y = zip(*pts)
        lo, hi = min(lo, *x, *y), max(hi, *x, *y)
        ax.scatter(x, y, s=12, marker="o" if run["mode"] == "snn" else "x",
                   color=f"C{archs.index(run['architecture'])}", alpha=0.7,
                   label=f"{run['architecture']} {run['mode'].upper()}")
    if hi > 0:
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, label="counted = predicted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ideal closed form (count)")
    ax.set_ylabel("counted by the simulator")
    ax.set_title("per term (layer x component.action)")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    causes = sorted({c for run in doc["runs"] for c in run["energy_pj"]["causes"]})
    labels = [f"{r['architecture'][:12]}\n{r['mode']}" for r in doc["runs"]]
    bottom = [0.0] * len(doc["runs"])
    for i, c in enumerate(causes):
        vals = [run["energy_pj"]["causes"].get(c, 0.0) / max(run["energy_pj"]["counted"], 1e-30)
                for run in doc["runs"]]
        bx.bar(range(len(vals)), vals, bottom=bottom, label=c, color=f"C{i}")
        bottom = [b + v for b, v in zip(bottom, vals)]
    bx.set_xticks(range(len(labels)))
    bx.set_xticklabels(labels, fontsize=7)
    bx.set_ylabel("residual energy / counted energy")
    bx.set_title("residual by cause" + (" (none: ideal spec)" if not causes else ""))
    if causes:
        bx.legend(fontsize=7)
    fig.suptitle(f"validate {doc['trace']['model']} T={doc['trace']['T']} "
                 f"({'ideal' if doc['ideal'] else 'spec'}, {doc['energy_table']})", fontsize=10)
    _save(fig, dest)
    plt.close(fig)


def plot_breakeven(doc: dict, dest: str) -> None:
    """s*(T) per architecture: simulated (solid), per-architecture closed form (dashed) and
    the paper's v1 (dotted)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    none: list[str] = []
    for i, (arch, rows) in enumerate(doc["architectures"].items()):
        for key, style, label in (("simulated", "-o", "simulated"), ("closed_form", "--s", "closed form"),
                                  ("closed_form_fixed_rho", "-.d", "closed form, fixed rho"),
                                  ("paper_v1", ":^", "paper v1")):
            pts = [(r["T"], r[key]["s_star"]) for r in rows if r.get(key) and r[key]["s_star"] is not None]
            if pts:
                ax.plot(*zip(*pts), style, color=f"C{i}", label=f"{arch} {label}", markersize=4)
            elif key == "simulated":
                none.append(arch)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if none:
        ax.text(0.02, 0.02, "simulated: no break-even at any T on " + ", ".join(none), transform=ax.transAxes,
                fontsize=8, color="dimgrey")
    ax.set_xlabel("time window T")
    ax.set_ylabel("break-even sparsity s*")
    ax.set_title(f"SNN cheaper above the curve ({doc['model']}, {doc['energy_table']})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, dest)
    plt.close(fig)
