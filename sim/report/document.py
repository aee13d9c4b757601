"""Report documents: a RunResult priced with an energy table, as the stable JSON schema of
design.md, and flat per-layer CSV rows. ``reprice`` re-prices a saved report.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from sim.arch.energy import EnergyTable
from sim.errors import SpecError
from sim.report.pricing import missing_entries, price
from sim.report.totals import CANONICAL_TOTALS, WORKLOAD_TOTALS, hardware_totals

if TYPE_CHECKING:  # the report reads a result; it never imports the simulator
    from sim.architectures.base import RunResult

SCHEMA = "snn-energy-report/1"



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


def build_report(result: RunResult, spec, table: EnergyTable, trace_info: dict, partial: bool = False) -> dict:
    """The report document of one (architecture, mode) run. ``partial``: a table that lacks
    entries for this architecture leaves the report unpriced (see :func:`is_priced`) instead
    of raising SpecError."""
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
    _apply_prices(report, table, partial)
    return report


def is_priced(report: dict) -> bool:
    """False for a report whose energy table could not price its counts: its energies are
    None and ``unpriced`` names the missing entries."""
    return report.get("energy_pj") is not None


def unpriced_text(report: dict) -> str:
    """One line naming what the table lacks to price ``report``."""
    u = report["unpriced"]
    parts = [f"{e} (for {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
             for e, keys in u["missing_entries"].items()]
    return (f"energy table {u['energy_table']!r} cannot price {report['arch']['name']}: "
            f"no entr{'y' if len(parts) == 1 else 'ies'} {'; '.join(parts)}")


def require_priced(reports: list[dict], table: EnergyTable) -> None:
    """SpecError naming the table and what it lacks when it priced none of ``reports``."""
    if reports and not any(is_priced(r) for r in reports):
        names = sorted({e for r in reports for e in r["unpriced"]["missing_entries"]})
        raise SpecError(table.path, f"entries.{names[0]}",
                        f"missing: energy table {table.name!r} can price none of the runs "
                        f"(it lacks {', '.join(names)})")


def _apply_prices(report: dict, table: EnergyTable, partial: bool = False) -> None:
    totals = dict.fromkeys(CANONICAL_TOTALS, 0)
    for layer in report["layers"]:
        for k in CANONICAL_TOTALS:
            totals[k] += layer["totals"][k]
    n = report["samples"]
    report["energy_table"] = table.name
    report["totals"] = totals
    report.pop("unpriced", None)
    keys = {k for layer in report["layers"] for k in layer["counts"]}
    missing = missing_entries(sorted(keys), report["arch"]["components"], table) if partial else {}
    if missing:
        for layer in report["layers"]:
            layer["energy_pj"] = None
        report["energy_pj"] = None
        report["unpriced"] = {"energy_table": table.name, "missing_entries": missing}
        report["per_sample"] = {"energy_pj": None, "cycles": report["cycles"] / n,
                                "totals": {k: v / n for k, v in totals.items()}}
        return
    per_layer, by_comp, by_action, total = _energy_sections(report["layers"], report["arch"]["components"], table)
    for layer, pj in zip(report["layers"], per_layer):
        layer["energy_pj"] = pj
    report["energy_pj"] = {"total": total, "by_component": by_comp, "by_action": by_action}
    report["per_sample"] = {"energy_pj": total / n, "cycles": report["cycles"] / n,
                            "totals": {k: v / n for k, v in totals.items()}}


def reprice(report: dict, table: EnergyTable, path: str | None = None, partial: bool = False) -> dict:
    """A saved report priced with another table: the counts are kept, energies recomputed
    (``partial``: as for :func:`build_report`)."""
    if report.get("schema") != SCHEMA:
        raise SpecError(path, "schema", f"expected a report with schema {SCHEMA!r}, got {report.get('schema')!r}")
    for i, layer in enumerate(report.get("layers", [])):
        for key in ("counts", "bits", "totals"):
            if key not in layer:
                raise SpecError(path, f"layers[{i}].{key}", "missing required field")
    out = {k: v for k, v in report.items()}
    out["layers"] = [dict(layer) for layer in report["layers"]]
    _apply_prices(out, table, partial)
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


def ratios(reports: list[dict]) -> dict[str, float]:
    """E_SNN / E_ANN per architecture that was replayed in both modes."""
    energy = {(r["arch"]["name"], r["mode"]): r["energy_pj"]["total"] for r in reports if is_priced(r)}
    return {arch: energy[(arch, "snn")] / energy[(arch, "ann")]
            for arch, mode in energy if mode == "snn" and (arch, "ann") in energy and energy[(arch, "ann")]}
