"""Price and report: counts x energy tables (:mod:`~sim.report.pricing`), the canonical totals
(:mod:`~sim.report.totals`), report documents and CSV rows (:mod:`~sim.report.document`),
terminal tables (:mod:`~sim.report.text`) and all-or-nothing output files
(:mod:`~sim.report.output`). Nothing here simulates."""

from __future__ import annotations

from sim.report.document import SCHEMA, build_report, csv_rows, is_priced, ratios, reprice, require_priced, unpriced_text
from sim.report.text import format_report
from sim.report.totals import CANONICAL_TOTALS, HARDWARE_TOTALS, WORKLOAD_TOTALS, hardware_totals

__all__ = ["CANONICAL_TOTALS", "HARDWARE_TOTALS", "SCHEMA", "WORKLOAD_TOTALS", "build_report", "csv_rows",
           "format_report", "hardware_totals", "is_priced", "ratios", "reprice", "require_priced",
           "unpriced_text"]
