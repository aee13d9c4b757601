"""Terminal tables of report documents."""

from __future__ import annotations

from sim.report.document import unpriced_text


def _si(x: float | None) -> str:
    if x is None:  # an energy the table could not price
        return "-"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def format_report(report: dict) -> str:
    """A readable terminal table of one report."""
    n = report["samples"]
    lines = [f"{report['arch']['architecture']} / {report['mode'].upper()}  "
             f"({report['trace'].get('model')}, T={report['trace'].get('T')}, {n} sample(s), "
             f"energy table {report['energy_table']})"]
    head = f"{'layer':<10} {'cycles':>9} {'energy pJ':>10} {'DRAM bits':>10} {'SRAM bits':>10} {'MACs':>9} {'syn ops':>9} {'spikes out':>10}"
    lines += [head, "-" * len(head)]
    for layer in report["layers"]:
        t = layer["totals"]
        lines.append(f"{layer['name']:<10} {_si(layer['cycles']):>9} {_si(layer['energy_pj']):>10} "
                     f"{_si(t['dram_read_bits'] + t['dram_write_bits']):>10} "
                     f"{_si(t['sram_read_bits'] + t['sram_write_bits']):>10} {_si(t['macs']):>9} "
                     f"{_si(t['synaptic_ops']):>9} {_si(t['spikes_out']):>10}")
    e = report["energy_pj"]
    lines.append("-" * len(head))
    if e is None:
        lines.append(f"{'total':<10} {_si(report['cycles']):>9} {'-':>10}   "
                     f"per sample: {_si(report['cycles'] / n)} cycles, stalls {_si(report['stall_cycles'])}")
        lines.append(f"not priced: {unpriced_text(report)}")
    else:
        lines.append(f"{'total':<10} {_si(report['cycles']):>9} {_si(e['total']):>10}   "
                     f"per sample: {_si(e['total'] / n)} pJ, {_si(report['cycles'] / n)} cycles, "
                     f"stalls {_si(report['stall_cycles'])}")
        parts = ", ".join(f"{k} {100 * v / e['total']:.1f}%" for k, v in
                          sorted(e["by_component"].items(), key=lambda kv: -kv[1]) if e["total"])
        lines.append(f"energy by component: {parts}")
    lines.append("utilisation: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in report["utilisation"].items()))
    return "\n".join(lines) + "\n"
