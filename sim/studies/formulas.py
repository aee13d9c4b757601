"""The paper's v1 closed form tabulated (``run_sim.py formulas``): break-even sparsity s*(T)
per architecture, E_SNN/E_ANN (or E_SNN/E_QNN) at a given sparsity, and the v1 abstract's
claim against the v1 model's own numbers."""

from __future__ import annotations

from sim.analytic.paper_v1 import ABSTRACT_CLAIM


def _rows(arch, c, Ts, sparsity, baseline, qnn_rho) -> dict:
    from sim.analytic import paper_v1 as v1

    out: dict = {"break_even": []}
    for T in Ts:
        be = v1.break_even(arch, c, T, baseline, qnn_rho)
        row = {"T": T}
        if baseline == "qnn":
            row["bits"] = v1.qnn_bits(T)
        row.update({"s_star": be.s_star, "attainable": be.attainable,
                    "e_baseline_pj": be.e_baseline_pj, "e_snn_fixed_pj": be.snn_fixed_pj,
                    "e_snn_per_spike_rate_pj": be.snn_per_rate_pj})
        out["break_even"].append(row)
    if sparsity is not None:
        out["ratio"] = []
        for T in Ts:
            snn = v1.snn_energy(arch, c, sparsity, T)
            base = v1.baseline_energy(arch, c, T, baseline, qnn_rho)
            row = {"T": T, "bits": v1.qnn_bits(T)} if baseline == "qnn" else {"T": T}
            row.update({"sparsity": sparsity, "ratio": snn.total / base.total,
                        "e_snn_pj": snn.as_dict(), "e_baseline_pj": base.as_dict()})
            out["ratio"].append(row)
    return out


def paper_v1_table(Ts: list[int], sparsity: float | None, table_name: str, qnn: bool = False,
            qnn_rho: float | None = None) -> dict:
    """The formulas result as a JSON-ready dict (energies in pJ per synapse per inference)."""
    from sim.analytic import paper_v1 as v1
    from sim.arch.energy import load_energy_table

    table = load_energy_table(table_name)
    c = v1.V1Constants.from_table(table)
    result: dict = {
        "energy_table": table.name,
        "constants": {"e_add_pj": c.e_add, "e_mul_pj": c.e_mul, "e_mem_pj": c.e_mem,
                      "e_dram_pj": c.e_dram, "rho": c.rho, "R": c.R, "N": c.N,
                      "c_syn_pj": c.c_syn, "datapath_bits": c.datapath_bits},
        "paper_v1": {a: {"e_ann_pj": v1.ann_energy(a, c).as_dict(),
                         **_rows(a, c, Ts, sparsity, "ann8", None)} for a in v1.ARCHITECTURES},
    }
    if qnn:
        result["paper_v1_qnn"] = {a: _rows(a, c, Ts, sparsity, "qnn", qnn_rho) for a in v1.ARCHITECTURES}
        result["qnn_baseline"] = {
            "rho": c.rho if qnn_rho is None else qnn_rho,
            "pricing": "v1 ANN terms with ceil(log2(T+1))-bit activations: the activation access "
                       "and the multiply scale by bits/datapath_bits; weights, partial sums, "
                       "DRAM and the add are unchanged"}
    T0, r0, s0 = ABSTRACT_CLAIM["T"], ABSTRACT_CLAIM["ratio"], ABSTRACT_CLAIM["sparsity"]
    result["abstract_claim"] = {
        **ABSTRACT_CLAIM,
        "model_ratio_at_claimed_sparsity": {a: v1.ratio(a, c, s0, T0) for a in v1.ARCHITECTURES},
        "model_sparsity_for_claimed_ratio": {a: v1.sparsity_for_ratio(a, c, T0, r0) for a in v1.ARCHITECTURES},
    }
    return result


def format_text(res: dict, qnn: bool) -> str:
    archs = list(res["paper_v1"])
    width = max(len(a) for a in archs) + 2
    lines = [f"Paper v1 closed-form model, energy table {res['energy_table']} "
             "(pJ per synapse per inference)"]
    lines += [f"  E_ANN (8-bit, zero-skipping) {a}: {res['paper_v1'][a]['e_ann_pj']['total']:.3f} pJ"
              for a in archs]

    def table(title: str, key: str, value: str, section: str) -> None:
        lines.extend(["", title])
        head = f"{'T':>4}" + ("  bits" if section == "paper_v1_qnn" else "")
        lines.append(head + "".join(f"{a:>{width}}" for a in archs))
        for i, row in enumerate(res[section][archs[0]][key]):
            cells = "".join(_cell(res[section][a][key][i][value], width, value == "s_star")
                            for a in archs)
            lines.append(f"{row['T']:>4}" + (f"{row['bits']:>6}" if "bits" in row else "") + cells)

    table("Break-even sparsity s*(T): the SNN costs less than the ANN when s > s*",
          "break_even", "s_star", "paper_v1")
    if "ratio" in res["paper_v1"][archs[0]]:
        s = res["paper_v1"][archs[0]]["ratio"][0]["sparsity"]
        table(f"E_SNN / E_ANN at s = {s:g}", "ratio", "ratio", "paper_v1")
    if qnn:
        table(f"Break-even sparsity against a QNN with ceil(log2(T+1))-bit activations "
              f"(rho = {res['qnn_baseline']['rho']:g})", "break_even", "s_star", "paper_v1_qnn")
        if "ratio" in res["paper_v1_qnn"][archs[0]]:
            table("E_SNN / E_QNN at the same sparsity", "ratio", "ratio", "paper_v1_qnn")
    if any(r["T"] == ABSTRACT_CLAIM["T"] for r in res["paper_v1"][archs[0]]["break_even"]):
        ac = res["abstract_claim"]
        lines += ["", f"Note (inconsistency in the paper): the v1 abstract quotes {ac['ratio']:.0%} of "
                      f"the ANN's energy at s = {ac['sparsity']:.2%}, T = {ac['T']}; the v1 model gives "
                      + ", ".join(f"{a} {ac['model_ratio_at_claimed_sparsity'][a]:.3f}" for a in archs)
                      + " there, and reaches 0.69 only at s = "
                      + ", ".join(f"{ac['model_sparsity_for_claimed_ratio'][a]:.4f} ({a})" for a in archs)
                      + "."]
    return "\n".join(lines) + "\n"


def _cell(x: float, width: int, is_sparsity: bool) -> str:
    # s* > 1: even a silent SNN costs more than the baseline, so no sparsity breaks even.
    return f"{'never':>{width}}" if is_sparsity and x > 1 else f"{x:>{width}.4f}"
