"""Replay a trace on one or more architectures and modes: count, then price."""

from __future__ import annotations

import sys

from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.arch.registry import arch_kind
from sim.errors import ParameterError
from sim.report import build_report
from sim.trace import Trace
from sim.workload import Workload


def trace_info(trace: Trace, samples: int) -> dict:
    m = trace.meta
    return {"path": trace.path, "model": m.model, "dataset": m.dataset, "T": m.T,
            "samples_in_trace": m.n_samples, "samples_replayed": samples, "synthetic": m.synthetic,
            "ann_activation_bits": m.ann_activation_bits}


def check_samples(trace: Trace, samples: int | None) -> int:
    if samples is None:
        return trace.n_samples
    if not 1 <= samples <= trace.n_samples:
        raise ParameterError(trace.path, "--samples", f"must be in 1..{trace.n_samples}, got {samples}")
    return samples


def replay(trace: Trace, arch: str, modes: list[str], energy: str, samples: int | None = None,
           overrides: list[str] | None = None, progress: bool = True, partial: bool = False) -> list[dict]:
    """Reports (one per mode) of ``trace`` on arch spec ``arch`` priced with ``energy``
    (``partial``: an architecture the table cannot price gets an unpriced report)."""
    spec = load_arch_spec(arch, overrides)
    table = load_energy_table(energy)
    n = check_samples(trace, samples)
    workload = Workload(trace)
    sim = arch_kind(spec.architecture).simulator_class()(spec, workload)
    reports = []
    for mode in modes:
        bar = _progress(n, f"{spec.name}/{mode}", progress)
        result = sim.run(mode, n, progress=bar.update if bar else None)
        if bar:
            bar.close()
        reports.append(build_report(result, spec, table, trace_info(trace, n), partial))
    return reports


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, leave=False, disable=None)
