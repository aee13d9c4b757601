"""Break-even curves s*(T) of the paper's v1 closed form (``formulas --plot``)."""

from __future__ import annotations


def plot(res: dict, dest: str, qnn: bool) -> None:
    """Break-even curves s*(T), one per architecture (QNN baseline dashed), to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for section, style, label in (("paper_v1", "-o", "vs 8-bit ANN"), ("paper_v1_qnn", "--s", "vs QNN")):
        if section == "paper_v1_qnn" and not qnn:
            continue
        for i, a in enumerate(res["paper_v1"]):
            rows = [r for r in res[section][a]["break_even"] if r["attainable"]]
            ax.plot([r["T"] for r in rows], [r["s_star"] for r in rows], style, color=f"C{i}",
                    label=f"{a} {label}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if "ratio" in res["paper_v1"][next(iter(res["paper_v1"]))]:
        s = res["paper_v1"][next(iter(res["paper_v1"]))]["ratio"][0]["sparsity"]
        ax.axhline(s, color="grey", linewidth=0.8, linestyle=":", label=f"s = {s:g}")
    ax.set_xlabel("time window T")
    ax.set_ylabel("break-even sparsity s*")
    ax.set_title(f"SNN cheaper above the curve (paper v1, {res['energy_table']})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dest, format="png", dpi=120)  # dest: a temporary the caller renames
    plt.close(fig)
