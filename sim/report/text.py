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
    twin = report["trace"].get("twin")
    twin_text = (", twin derived from the spike counts" if twin == "derived" else "") if report["mode"] == "ann" else ""
    lines = [f"{report['arch']['architecture']} / {report['mode'].upper()}  "
             f"({report['trace'].get('model')}, T={report['trace'].get('T')}, {n} sample(s), "
             f"energy table {report['energy_table']}{twin_text})"]
    graph = any(l["totals"].get("adds", 0) or l["totals"].get("compares", 0) for l in report["layers"])
    w = max([10, *(len(l["name"]) for l in report["layers"])])
    head = (f"{'layer':<{w}} {'cycles':>9} {'energy pJ':>10} {'DRAM bits':>10} {'SRAM bits':>10} {'MACs':>9} "
            f"{'syn ops':>9}" + (f" {'adds':>9} {'compares':>9}" if graph else "") + f" {'spikes out':>10}")
    lines += [head, "-" * len(head)]
    for layer in report["layers"]:
        t = layer["totals"]
        extra = f" {_si(t.get('adds', 0)):>9} {_si(t.get('compares', 0)):>9}" if graph else ""
        lines.append(f"{layer['name']:<{w}} {_si(layer['cycles']):>9} {_si(layer['energy_pj']):>10} "
                     f"{_si(t['dram_read_bits'] + t['dram_write_bits']):>10} "
                     f"{_si(t['sram_read_bits'] + t['sram_write_bits']):>10} {_si(t['macs']):>9} "
                     f"{_si(t['synaptic_ops']):>9}{extra} {_si(t['spikes_out']):>10}")
    e = report["energy_pj"]
    lines.append("-" * len(head))
    if e is None:
        lines.append(f"{'total':<{w}} {_si(report['cycles']):>9} {'-':>10}   "
                     f"per sample: {_si(report['cycles'] / n)} cycles, stalls {_si(report['stall_cycles'])}")
        lines.append(f"not priced: {unpriced_text(report)}")
    else:
        lines.append(f"{'total':<{w}} {_si(report['cycles']):>9} {_si(e['total']):>10}   "
                     f"per sample: {_si(e['total'] / n)} pJ, {_si(report['cycles'] / n)} cycles, "
                     f"stalls {_si(report['stall_cycles'])}")
        parts = ", ".join(f"{k} {100 * v / e['total']:.1f}%" for k, v in
                          sorted(e["by_component"].items(), key=lambda kv: -kv[1]) if e["total"])
        lines.append(f"energy by component: {parts}")
    lines.append("utilisation: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in report["utilisation"].items()))
    return "\n".join(lines) + "\n"
