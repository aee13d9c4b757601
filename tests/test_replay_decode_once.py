"""`replay --arch all --mode both` reads and decodes each sample's events exactly once, and
loads each spec and the energy table once (sim.replay, sim.workload.SampleEvents)."""

from __future__ import annotations

from collections import Counter

import pytest

import sim.arch.energy
import sim.arch.spec
import sim.replay
from sim.arch.registry import ARCH_KINDS
from sim.trace.reader import Trace

from conftest import REPO


@pytest.fixture
def reads(monkeypatch):
    """Counter of (method, layer, sample) trace reads, and of spec and table loads."""
    seen: Counter = Counter()
    for method in ("spikes_packed", "activations"):
        original = getattr(Trace, method)

        def counted(self, name, sample, _original=original, _method=method):
            seen[(_method, name, sample)] += 1
            return _original(self, name, sample)
        monkeypatch.setattr(Trace, method, counted)
    original_input = Trace.input

    def counted_input(self, sample):
        seen[("input", None, sample)] += 1
        return original_input(self, sample)
    monkeypatch.setattr(Trace, "input", counted_input)
    load_spec, load_table = sim.arch.spec.load_arch_spec, sim.arch.energy.load_energy_table

    def spec(*a, **k):
        seen[("spec", a[0], None)] += 1
        return load_spec(*a, **k)

    def table(*a, **k):
        seen[("table", a[0], None)] += 1
        return load_table(*a, **k)
    monkeypatch.setattr(sim.replay, "load_arch_spec", spec)
    monkeypatch.setattr(sim.replay, "load_energy_table", table)
    return seen


def test_replay_all_both_reads_each_samples_events_exactly_once(reads):
    doc, reports = sim.replay.replay_document(str(REPO / "traces" / "digits_snn_T6.h5"), "all", ["snn", "ann"],
                                              "paper_v1_45nm", samples=3, progress=False)
    assert len(reports) == 2 * len(ARCH_KINDS)
    events = {k: n for k, n in reads.items() if k[0] in ("spikes_packed", "activations", "input")}
    assert events, "the replay read no events"
    assert {k[2] for k in events} == {0, 1, 2}
    assert all(n == 1 for n in events.values()), {k: n for k, n in events.items() if n != 1}
    # every spiking layer's spikes, and the input, were read for every sample
    from sim.trace import open_trace

    with open_trace(REPO / "traces" / "digits_snn_T6.h5") as tr:
        spiking = [l.name for l in tr.layers if l.output == "spikes"]
    assert {k for k in events if k[0] == "spikes_packed"} == {("spikes_packed", n, i) for n in spiking for i in range(3)}
    assert {k for k in events if k[0] == "input"} == {("input", None, i) for i in range(3)}
    loads = {k: n for k, n in reads.items() if k[0] in ("spec", "table")}
    assert loads == {**{("spec", k.name, None): 1 for k in ARCH_KINDS}, ("table", "paper_v1_45nm", None): 1}


def test_one_pass_over_all_architectures_equals_each_architecture_alone():
    from sim.trace import open_trace

    with open_trace(REPO / "traces" / "tiny_synth_T4.h5") as tr:
        together = sim.replay.replay(tr, [k.name for k in ARCH_KINDS], ["snn", "ann"], "paper_v1_45nm",
                                     samples=3, progress=False)
        alone = [r for k in ARCH_KINDS
                 for r in sim.replay.replay(tr, k.name, ["snn", "ann"], "paper_v1_45nm", samples=3, progress=False)]
    assert [(r["arch"]["name"], r["mode"]) for r in together] == [(r["arch"]["name"], r["mode"]) for r in alone]
    for a, b in zip(together, alone):
        assert a["counts"] == b["counts"] and a["cycles"] == b["cycles"] and a["totals"] == b["totals"]
