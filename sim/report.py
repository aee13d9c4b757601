"""Reports: a RunResult priced with an energy table, as the stable JSON schema of design.md,
flat per-layer CSV rows and a terminal table. ``reprice`` re-prices a saved report.
"""

from __future__ import annotations

from collections import defaultdict

from sim.arch.energy import EnergyTable
from sim.architectures.base import RunResult
from sim.errors import SpecError
from sim.pricing import price
from sim.totals import CANONICAL_TOTALS, WORKLOAD_TOTALS, hardware_totals

SCHEMA = "snn-energy-report/1"

__all__ = ["CANONICAL_TOTALS", "WORKLOAD_TOTALS", "build_report", "csv_rows", "format_report",
           "hardware_totals", "reprice"]


def _energy_sections(layers: list[dict], components: dict[str, dict], table: EnergyTable):
    """Price every layer; returns (per-layer energies, by_component, by_action, total)."""
    by_comp: dict[str, float] = defaultdict(float)
    by_action: dict[str, float] = defaultdict(float)
    per_layer = []
    for layer in layers:
        e = price(layer["counts"], layer["bits"], components, table)
        per_layer.append(sum(e.values()))
        for key, pj in e.items():
            by_action[key] += pj
            by_comp[key.split(".", 1)[0]] += pj
    return per_layer, dict(by_comp), dict(by_action), sum(per_layer)


def build_report(result: RunResult, spec, table: EnergyTable, trace_info: dict) -> dict:
    """The report document of one (architecture, mode) run."""
    led = result.ledger
    components = {name: {"class": c.cls, "capacity_bytes": c.capacity_bytes}
                  for name, c in spec.components.items()}
    classes = {n: c["class"] for n, c in components.items()}
    layers = []
    for name in led.layers():
        counts, bits = led.layer_counts(name), led.layer_bits(name)
        totals = {k: int(result.workload.get(name, {}).get(k, 0)) for k in WORKLOAD_TOTALS}
        totals.update(hardware_totals(counts, bits, classes))
        layers.append({"name": name, "cycles": int(result.layer_cycles.get(name, 0)),
                       "counts": counts, "bits": bits, "totals": totals})
    report = {
        "schema": SCHEMA,
        "trace": trace_info,
        "arch": {"name": spec.name, "architecture": spec.architecture, "spec": spec.to_dict(),
                 "components": components},
        "energy_table": table.name,
        "mode": result.mode,
        "samples": result.samples,
        "cycles": int(result.cycles),
        "stall_cycles": int(result.stall_cycles),
        "counts": led.totals(),
        "totals": {},
        "layers": layers,
        "utilisation": result.utilisation,
        "notes": result.notes,
        "extra": result.extra,
    }
    _apply_prices(report, table)
    return report


def _apply_prices(report: dict, table: EnergyTable) -> None:
    per_layer, by_comp, by_action, total = _energy_sections(report["layers"], report["arch"]["components"], table)
    for layer, pj in zip(report["layers"], per_layer):
        layer["energy_pj"] = pj
    totals = dict.fromkeys(CANONICAL_TOTALS, 0)
    for layer in report["layers"]:
        for k in CANONICAL_TOTALS:
            totals[k] += layer["totals"][k]
    n = report["samples"]
    report["energy_table"] = table.name
    report["energy_pj"] = {"total": total, "by_component": by_comp, "by_action": by_action}
    report["totals"] = totals
    report["per_sample"] = {"energy_pj": total / n, "cycles": report["cycles"] / n,
                            "totals": {k: v / n for k, v in totals.items()}}


def reprice(report: dict, table: EnergyTable, path: str | None = None) -> dict:
    """A saved report priced with another table: the counts are kept, energies recomputed."""
    if report.get("schema") != SCHEMA:
        raise SpecError(path, "schema", f"expected a report with schema {SCHEMA!r}, got {report.get('schema')!r}")
    for i, layer in enumerate(report.get("layers", [])):
        for key in ("counts", "bits", "totals"):
            if key not in layer:
                raise SpecError(path, f"layers[{i}].{key}", "missing required field")
    out = {k: v for k, v in report.items()}
    out["layers"] = [dict(layer) for layer in report["layers"]]
    _apply_prices(out, table)
    return out


def csv_rows(report: dict) -> list[dict]:
    """One flat row per layer: identifiers, cycles, energy, canonical totals, every count."""
    rows = []
    count_keys = sorted({k for layer in report["layers"] for k in layer["counts"]})
    for layer in report["layers"]:
        row = {"architecture": report["arch"]["architecture"], "mode": report["mode"],
               "energy_table": report["energy_table"], "layer": layer["name"],
               "cycles": layer["cycles"], "energy_pj": layer["energy_pj"]}
        row.update(layer["totals"])
        row.update({k: layer["counts"].get(k, 0) for k in count_keys})
        rows.append(row)
    return rows


def _si(x: float) -> str:
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
    lines.append(f"{'total':<10} {_si(report['cycles']):>9} {_si(e['total']):>10}   "
                 f"per sample: {_si(e['total'] / n)} pJ, {_si(report['cycles'] / n)} cycles, "
                 f"stalls {_si(report['stall_cycles'])}")
    parts = ", ".join(f"{k} {100 * v / e['total']:.1f}%" for k, v in
                      sorted(e["by_component"].items(), key=lambda kv: -kv[1]) if e["total"])
    lines.append(f"energy by component: {parts}")
    lines.append("utilisation: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in report["utilisation"].items()))
    return "\n".join(lines) + "\n"
