"""Replay a trace on one or more architectures and modes: count, then price.

Every spec and the energy table are loaded once per call; every sample is decoded once
(:meth:`sim.workload.Workload.sample`) and fed to every (architecture, mode) session, in
sample order, so ``replay --arch all --mode both`` reads each sample's events from the trace
exactly once. With ``workers`` > 1 or a Dask ``scheduler``, the samples are counted in
chunks on Dask and merged exactly (:mod:`sim.replay.parallel`).
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
    return count_runs(trace, [(spec, mode) for spec in specs for mode in modes], samples, progress)


def start_sessions(workload: Workload, runs: list[tuple[ArchSpec, str]]) -> list:
    """One new session per (spec, mode) of ``runs``, one simulator per spec (built, and its
    static mapping checked, here)."""
    sims: dict[int, object] = {}
    for spec, _ in runs:
        if id(spec) not in sims:
            sims[id(spec)] = arch_kind(spec.architecture).simulator_class()(spec, workload)
    return [sims[id(spec)].start(mode) for spec, mode in runs]


def count_runs(trace: Trace, runs: list[tuple[ArchSpec, str]], samples: int | None = None,
               progress: bool = True, workers: int = 1, scheduler: str | None = None) -> list[Counted]:
    """Count every (spec, mode) pair of ``runs`` (each its own spec: the mapper gives each mode
    its own mapping), each sample decoded once and fed to every run. ``workers`` > 1 or a
    ``scheduler`` address: in chunks of samples on Dask, merged exactly
    (:func:`sim.replay.parallel.count_runs_parallel`)."""
    n = check_samples(trace, samples)
    if workers != 1 or scheduler:
        from sim.replay.parallel import count_runs_parallel
        return count_runs_parallel(trace, runs, n, workers, scheduler, progress)
    workload = Workload(trace)
    sessions = start_sessions(workload, runs)
    bar = _progress(n, f"replay {len(runs)} run{'s' * (len(runs) != 1)}", progress)
    for i in range(n):
        events = workload.sample(i)
        for session in sessions:
            session.add(events)
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return [Counted(spec, mode, session.finish()) for (spec, mode), session in zip(runs, sessions)]


def replay_specs(trace: Trace, specs: list[ArchSpec], modes: list[str], table: EnergyTable,
                 samples: int | None = None, progress: bool = True, partial: bool = False) -> list[dict]:
    """Reports, one per (spec, mode) in that order, priced with ``table`` (``partial``: an
    architecture the table cannot price gets an unpriced report, see sim.report)."""
    return mapped_reports(trace, specs, modes, table, samples, progress=progress, partial=partial)[0]


def replay(trace: Trace, arch: str | list[str], modes: list[str], energy: str, samples: int | None = None,
           overrides: list[str] | None = None, progress: bool = True, partial: bool = False,
           map_policy: str = "spec", objective: str = "energy") -> list[dict]:
    """Reports of ``trace`` on arch spec ``arch`` (a name or path, or a list of them), one per
    (spec, mode), priced with energy table ``energy``; ``overrides`` apply to every spec;
    ``map_policy`` ``best``: each run on the mapper's choice (see :func:`replay_document`)."""
    names = [arch] if isinstance(arch, str) else list(arch)
    specs = [load_arch_spec(a, overrides) for a in names]
    return mapped_reports(trace, specs, modes, load_energy_table(energy), samples, map_policy, objective,
                          progress, partial)[0]


def replay_document(trace_path: str, arch: str, modes: list[str], energy: str, samples: int | None = None,
                    overrides: list[str] | None = None, progress: bool = True, map_policy: str = "spec",
                    objective: str = "energy", workers: int = 1,
                    scheduler: str | None = None) -> tuple[dict, list[dict]]:
    """What ``run_sim.py replay`` writes: the report of one run, or for several
    (``--arch all``, ``--mode both``) ``{"schema", "runs", "ratios"}``; and the reports.
    ``arch`` is a spec name or path, or ``all`` (every registered architecture). A table
    that cannot price an architecture leaves its reports unpriced; SpecError if it prices
    none. ``map_policy`` ``best``: each (architecture, mode) runs the mapping the mapper finds
    best for ``objective`` (sim.replay.mapper), reported under ``mapping`` with the spec's
    own mapping's figures beside it and the closed form's prediction checked. ``workers`` /
    ``scheduler``: count on Dask in chunks of samples (:func:`count_runs`); the mapper runs
    here first."""
    from sim.arch.registry import architecture_names

    table = load_energy_table(energy)
    specs = [load_arch_spec(a, overrides) for a in architecture_names(arch)]
    with open_trace(trace_path) as trace:
        reports, _ = mapped_reports(trace, specs, modes, table, samples, map_policy, objective, progress,
                                    partial=True, workers=workers, scheduler=scheduler)
    require_priced(reports, table)
    doc = reports[0] if len(reports) == 1 else {"schema": reports[0]["schema"], "runs": reports,
                                                "ratios": ratios(reports)}
    return doc, reports


def mapped_reports(trace: Trace, specs: list[ArchSpec], modes: list[str], table: EnergyTable,
                   samples: int | None = None, map_policy: str = "spec", objective: str = "energy",
                   progress: bool = False, partial: bool = False, workers: int = 1, scheduler: str | None = None,
                   stats=None) -> tuple[list[dict], list[tuple[ArchSpec, str]]]:
    """The reports of every (spec, mode), spec-major, each on the spec's mapping or (``best``)
    the mapper's choice, which its report carries under ``mapping``; and the (spec, mode) runs
    they were counted on. ``stats``: the trace's event statistics, if the caller has them."""
    n = check_samples(trace, samples)
    runs, choices = mapped_runs(trace, specs, modes, table, n, map_policy, objective, progress, stats)
    info = trace_info(trace, n)
    reports = [build_report(c.result, c.spec, table, info, partial)
               for c in count_runs(trace, runs, n, progress, workers, scheduler)]
    attach_mapping(reports, choices)
    return reports, runs


def mapped_runs(trace: Trace, specs: list[ArchSpec], modes: list[str], table: EnergyTable, samples: int,
                map_policy: str = "spec", objective: str = "energy", progress: bool = False, stats=None):
    """The (spec, mode) runs of a replay and the mapper's choices (None per run under ``spec``)."""
    from sim.replay.mapper import MAP_POLICIES, search_modes

    if map_policy not in MAP_POLICIES:
        raise ParameterError(None, "--map", f"unknown policy {map_policy!r} (known: {', '.join(MAP_POLICIES)})")
    if map_policy == "spec":
        return [(s, m) for s in specs for m in modes], [None] * (len(specs) * len(modes))
    from sim.analytic.layer_stats import trace_event_stats

    if stats is None:
        stats = trace_event_stats(trace, samples, progress=progress)
    choices = [c for s in specs for c in search_modes(trace, s, modes, table, objective=objective, samples=samples,
                                                       stats=stats, progress=progress)]
    return [(c.spec, c.mode) for c in choices], choices


def attach_mapping(reports: list[dict], choices: list) -> None:
    """Each report of a ``--map best`` run gets its mapper's choice and the check of the
    chosen mapping's counts against the closed form's prediction."""
    from sim.replay.mapper import check_prediction

    for report, choice in zip(reports, choices):
        if choice is not None:
            report["mapping"] = {**choice.as_dict(), "prediction_check": check_prediction(report, choice.prediction)}


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, leave=False, disable=None)
