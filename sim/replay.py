"""Replay a trace on one or more architectures and modes: count, then price.

Every spec and the energy table are loaded once per call; every sample is decoded once
(:meth:`sim.workload.Workload.sample`) and fed to every (architecture, mode) session, in
sample order, so ``replay --arch all --mode both`` reads each sample's events from the trace
exactly once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sim.arch.energy import EnergyTable, load_energy_table
from sim.arch.registry import arch_kind
from sim.arch.spec import ArchSpec, load_arch_spec
from sim.errors import ParameterError
from sim.report import build_report, ratios, require_priced
from sim.trace import Trace, open_trace
from sim.workload import Workload


def trace_info(trace: Trace, samples: int) -> dict:
    m = trace.meta
    return {"path": trace.path, "model": m.model, "dataset": m.dataset, "T": m.T,
            "samples_in_trace": m.n_samples, "samples_replayed": samples, "synthetic": m.synthetic,
            "ann_activation_bits": m.ann_activation_bits, "format_version": trace.format_version,
            "encoding": m.encoding, "twin": m.twin}


def check_samples(trace: Trace, samples: int | None) -> int:
    if samples is None:
        return trace.n_samples
    if not 1 <= samples <= trace.n_samples:
        raise ParameterError(trace.path, "--samples", f"must be in 1..{trace.n_samples}, got {samples}")
    return samples


@dataclass
class Counted:
    """The unpriced result of one (spec, mode) run of a replay."""

    spec: ArchSpec
    mode: str
    result: object  # sim.architectures.base.RunResult


def count(trace: Trace, specs: list[ArchSpec], modes: list[str], samples: int | None = None,
          progress: bool = True) -> list[Counted]:
    """Count every (spec, mode), spec-major: each sample decoded once and fed to every run.
    Every simulator is built (and its static mapping checked) before any sample is read."""
    n = check_samples(trace, samples)
    workload = Workload(trace)
    sims = [(spec, arch_kind(spec.architecture).simulator_class()(spec, workload)) for spec in specs]
    sessions = [(spec, mode, sim.start(mode)) for spec, sim in sims for mode in modes]
    bar = _progress(n, f"replay {len(specs)} arch x {len(modes)} mode", progress)
    for i in range(n):
        events = workload.sample(i)
        for _, _, session in sessions:
            session.add(events)
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return [Counted(spec, mode, session.finish()) for spec, mode, session in sessions]


def replay_specs(trace: Trace, specs: list[ArchSpec], modes: list[str], table: EnergyTable,
                 samples: int | None = None, progress: bool = True, partial: bool = False) -> list[dict]:
    """Reports, one per (spec, mode) in that order, priced with ``table`` (``partial``: an
    architecture the table cannot price gets an unpriced report, see sim.report)."""
    n = check_samples(trace, samples)
    info = trace_info(trace, n)
    return [build_report(c.result, c.spec, table, info, partial)
            for c in count(trace, specs, modes, n, progress)]


def replay(trace: Trace, arch: str | list[str], modes: list[str], energy: str, samples: int | None = None,
           overrides: list[str] | None = None, progress: bool = True, partial: bool = False) -> list[dict]:
    """Reports of ``trace`` on arch spec ``arch`` (a name or path, or a list of them), one per
    (spec, mode), priced with energy table ``energy``; ``overrides`` apply to every spec."""
    names = [arch] if isinstance(arch, str) else list(arch)
    specs = [load_arch_spec(a, overrides) for a in names]
    return replay_specs(trace, specs, modes, load_energy_table(energy), samples, progress, partial)


def replay_document(trace_path: str, arch: str, modes: list[str], energy: str, samples: int | None = None,
                    overrides: list[str] | None = None, progress: bool = True) -> tuple[dict, list[dict]]:
    """What ``run_sim.py replay`` writes: the report of one run, or for several
    (``--arch all``, ``--mode both``) ``{"schema", "runs", "ratios"}``; and the reports.
    ``arch`` is a spec name or path, or ``all`` (every registered architecture). A table
    that cannot price an architecture leaves its reports unpriced; SpecError if it prices
    none."""
    from sim.arch.registry import architecture_names

    table = load_energy_table(energy)
    specs = [load_arch_spec(a, overrides) for a in architecture_names(arch)]
    with open_trace(trace_path) as trace:
        reports = replay_specs(trace, specs, modes, table, samples, progress, partial=True)
    require_priced(reports, table)
    doc = reports[0] if len(reports) == 1 else {"schema": reports[0]["schema"], "runs": reports,
                                                "ratios": ratios(reports)}
    return doc, reports


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, leave=False, disable=None)
