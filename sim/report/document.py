"""Report documents: a RunResult priced with an energy table, as the stable JSON schema of
design.md, and flat per-layer CSV rows. ``reprice`` re-prices a saved report after checking
its structure (``check_report``), so a malformed file is one SpecError naming its JSON path.
"""

from __future__ import annotations

import copy

import math
from collections import defaultdict
from typing import TYPE_CHECKING

from sim.arch.components import COMPONENT_CLASSES
from sim.arch.energy import EnergyTable
from sim.arch.fields import MAX_CAPACITY_BYTES, did_you_mean, show
from sim.arch.registry import MODES
from sim.errors import SpecError
from sim.report.pricing import missing_entries, price
from sim.report.totals import CANONICAL_TOTALS, WORKLOAD_TOTALS, hardware_totals

if TYPE_CHECKING:  # the report reads a result; it never imports the simulator
    from sim.architectures.base import RunResult

SCHEMA = "snn-energy-report/2"
#: Reports of schema 1 (before residual adds and max-pool compares had their own totals) are
#: re-priced as schema 2 with those totals 0: no format-1/2 trace has either.
OLD_SCHEMAS = ("snn-energy-report/1",)
_NEW_IN_2 = ("adds", "compares")



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


def reprice(report: dict, table: EnergyTable, path: str | None = None, partial: bool = False,
            where: str = "") -> dict:
    """A saved report priced with another table: the counts are kept, energies recomputed
    (``partial``: as for :func:`build_report`). SpecError naming ``path`` and the JSON path
    (``where`` + ``layers[2].counts``) for a report this cannot price (:func:`check_report`)."""
    check_report(report, path, where)
    out = {k: v for k, v in report.items()}
    out["layers"] = [dict(layer) for layer in report["layers"]]
    _apply_prices(out, table, partial)
    return out


def reprice_document(doc, table: EnergyTable, path: str | None = None) -> tuple[dict, list[dict]]:
    """A saved ``replay --json`` document (one report, or ``{"schema", "runs", "ratios"}``)
    re-priced with ``table``: the new document and its reports. Runs the table cannot price
    stay unpriced; SpecError if it prices none, or naming the JSON path of a malformed part."""
    if not isinstance(doc, dict):
        raise SpecError(path, None, f"expected a JSON report object, got {type(doc).__name__}")
    doc = _upgrade(doc)
    if "runs" in doc:
        _expect(isinstance(doc["runs"], list) and doc["runs"], path, "runs",
                f"expected a non-empty list of reports, got {show(doc['runs'])}")
        _expect(doc.get("schema") == SCHEMA, path, "schema", f"expected {SCHEMA!r}, got {show(doc.get('schema'))}")
        runs = [reprice(r, table, path, partial=True, where=f"runs[{i}].") for i, r in enumerate(doc["runs"])]
        out = {**doc, "runs": runs, "ratios": ratios(runs)}
    else:
        runs = [reprice(doc, table, path, partial=True)]
        out = runs[0]
    require_priced(runs, table)
    return out, runs


def _upgrade(doc: dict) -> dict:
    """A schema-1 document as schema 2 (a copy): the totals it lacks are 0."""
    if doc.get("schema") not in OLD_SCHEMAS:
        return doc
    doc = copy.deepcopy(doc)
    for report in (doc["runs"] if isinstance(doc.get("runs"), list) else [doc]):
        if not isinstance(report, dict) or report.get("schema") not in OLD_SCHEMAS:
            continue
        report["schema"] = SCHEMA
        for part in [report, *(report.get("layers") if isinstance(report.get("layers"), list) else [])]:
            if isinstance(part, dict) and isinstance(part.get("totals"), dict):
                for key in _NEW_IN_2:
                    part["totals"].setdefault(key, 0)
    doc["schema"] = SCHEMA
    return doc


#: Largest count, cycle count or total a saved report may hold: the ledger's int64.
MAX_REPORT_INT = 2 ** 63 - 1
#: Largest width of one counted action (bits): a packet of many wide flits stays far below.
MAX_ACTION_BITS = 2 ** 32


def _expect(ok, path, field: str, message: str) -> None:
    if not ok:
        raise SpecError(path, field, message)


def _int(v, path, field: str, minimum: int, maximum: int = MAX_REPORT_INT) -> None:
    ok = isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= maximum
    _expect(ok, path, field, f"expected an integer in {minimum}..{maximum}, got {show(v)}")


def _dict(v, path, field: str) -> dict:
    _expect(isinstance(v, dict), path, field, f"expected an object, got {type(v).__name__}")
    return v


def check_report(report, path: str | None = None, where: str = "") -> None:
    """SpecError naming ``path`` and the JSON path (``where`` prefixed, e.g.
    ``runs[0].layers[2].counts``) unless ``report`` is a report :func:`reprice` can price and
    print: the schema; ``arch.components`` mapping names to known component classes (with a
    capacity or null); the mode; positive ``samples``; non-negative ``cycles`` and
    ``stall_cycles``; ``utilisation`` numbers; layers whose ``counts`` are non-negative
    integers keyed ``component.action`` for a component of the report and an action its class
    prices, ``bits`` a positive width for every count, ``totals`` every canonical total; and
    the report's ``counts`` and ``totals`` the sums of its layers' (a deleted or edited layer
    shows there)."""
    _dict(report, path, where.rstrip(".") or None)
    _expect(report.get("schema") == SCHEMA, path, f"{where}schema",
            f"expected a report with schema {SCHEMA!r}, got {show(report.get('schema'))}")
    for key in ("arch", "trace", "mode", "samples", "cycles", "stall_cycles", "utilisation", "counts", "totals",
                "layers"):
        _expect(key in report, path, f"{where}{key}", "missing required field")
    arch = _dict(report["arch"], path, f"{where}arch")
    for key in ("name", "architecture"):
        _expect(isinstance(arch.get(key), str), path, f"{where}arch.{key}",
                f"expected a string, got {show(arch.get(key))}")
    comps = _dict(arch.get("components"), path, f"{where}arch.components")
    for name, comp in comps.items():
        at = f"{where}arch.components.{name}"
        _dict(comp, path, at)
        cls = comp.get("class")
        _expect(isinstance(cls, str) and cls in COMPONENT_CLASSES, path, f"{at}.class",
                f"unknown component class {show(cls)}"
                f"{did_you_mean(cls, COMPONENT_CLASSES) if isinstance(cls, str) else ''}")
        if "capacity_bytes" in COMPONENT_CLASSES[cls].fields:  # priced by size: it must be there
            _expect("capacity_bytes" in comp, path, f"{at}.capacity_bytes",
                    f"missing: a {cls} is priced by its capacity")
            _int(comp["capacity_bytes"], path, f"{at}.capacity_bytes", 1, MAX_CAPACITY_BYTES)
        else:
            _expect(comp.get("capacity_bytes") is None, path, f"{at}.capacity_bytes",
                    f"a {cls} has no capacity, got {show(comp.get('capacity_bytes'))}")
    _expect(report["mode"] in MODES, path, f"{where}mode", f"expected one of {', '.join(MODES)}, "
            f"got {show(report['mode'])}")
    _dict(report["trace"], path, f"{where}trace")
    _int(report["samples"], path, f"{where}samples", 1)
    for key in ("cycles", "stall_cycles"):
        _int(report[key], path, f"{where}{key}", 0)
    for key, v in _dict(report["utilisation"], path, f"{where}utilisation").items():
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        _expect(ok, path, f"{where}utilisation.{key}", f"expected a finite number, got {show(v)}")
    layers = report["layers"]
    _expect(isinstance(layers, list) and layers, path, f"{where}layers",
            f"expected a non-empty list of layers, got {show(layers)}")
    for i, layer in enumerate(layers):
        at = f"{where}layers[{i}]"
        _dict(layer, path, at)
        for key in ("name", "cycles", "counts", "bits", "totals"):
            _expect(key in layer, path, f"{at}.{key}", "missing required field")
        _expect(isinstance(layer["name"], str), path, f"{at}.name", f"expected a string, got {show(layer['name'])}")
        _int(layer["cycles"], path, f"{at}.cycles", 0)
        counts = _dict(layer["counts"], path, f"{at}.counts")
        bits = _dict(layer["bits"], path, f"{at}.bits")
        for key, n in counts.items():
            comp, _, action = key.partition(".")
            _expect(comp in comps, path, f"{at}.counts[{key!r}]",
                    f"component {comp!r} is not in arch.components{did_you_mean(comp, comps)}")
            cls = COMPONENT_CLASSES[comps[comp]["class"]]
            _expect(cls.entries(action) is not None, path, f"{at}.counts[{key!r}]",
                    f"a {cls.name} has no action {action!r}{did_you_mean(action, cls.performs)}")
            _int(n, path, f"{at}.counts[{key!r}]", 0)
            _expect(key in bits, path, f"{at}.bits[{key!r}]", "missing: every count needs its width")
            _int(bits[key], path, f"{at}.bits[{key!r}]", 1, MAX_ACTION_BITS)
        totals = _dict(layer["totals"], path, f"{at}.totals")
        for key in CANONICAL_TOTALS:
            _expect(key in totals, path, f"{at}.totals.{key}", "missing required field")
            _int(totals[key], path, f"{at}.totals.{key}", 0)
    for section, keys in (("counts", None), ("totals", CANONICAL_TOTALS)):
        summed: dict[str, int] = defaultdict(int)
        for layer in layers:
            for key, n in layer[section].items():
                if keys is None or key in keys:
                    summed[key] += n
        given = _dict(report[section], path, f"{where}{section}")
        for key in sorted(set(given) | set(summed)):
            at = f"{where}{section}[{key!r}]" if section == "counts" else f"{where}{section}.{key}"
            if key in given:
                _int(given[key], path, at, 0)
            _expect(given.get(key) == summed.get(key), path, at,
                    f"{show(given.get(key))} is not the sum of the layers' {section} ({summed.get(key)})")


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
