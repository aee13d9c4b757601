"""The compiled tile pipeline (sim.kernels.pipeline.tile_pipeline, behind TilePipeline's
"fast"/"auto" timing) against its plain-Python reference, the simpy model
(``TilePipeline.run_simpy``): cycle for cycle on every field, on random workloads and on
whole memory_hierarchy replays."""

from __future__ import annotations

import random

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import components
from sim.engine.components import Dram, PEArray, Sram, Tile, TilePipeline, set_timing
from sim.errors import ParameterError

from conftest import REPO


def _units(params):
    """(env, dram, sram, pe, pipe) from (dram bandwidth, dram latency, sram ports, sram width,
    sram banks, sram latency, pe ops per cycle)."""
    bw, dlat, ports, width, banks, slat, opc = params
    env = simpy.Environment()
    dram = Dram(env, 64, bw, dlat)
    sram = Sram(env, width, banks, ports, slat)
    pe = PEArray(env, 1, 1, opc)
    return env, dram, sram, pe, TilePipeline(dram, sram, pe)


def _observe(params, runs, modes):
    """Every observable of ``runs`` (tile lists run one after another on one environment),
    each run in the corresponding timing mode."""
    env, dram, sram, pe, pipe = _units(params)
    seen = []
    for tiles, mode in zip(runs, modes):
        s = pipe.run(tiles, timing=mode)
        seen.append((s.cycles, s.stall_cycles, list(s.stage_cycles.items()), list(s.stage_stalls.items()),
                     env.now, dram.busy_cycles, sram.busy_cycles, pe.busy_cycles))
    return seen


def _assert_same(params, runs):
    """simpy == fast on every run; and a mixed sequence of modes on one environment too."""
    ref = _observe(params, runs, ["simpy"] * len(runs))
    assert _observe(params, runs, ["fast"] * len(runs)) == ref
    mixed = [("fast", "simpy")[i % 2] for i in range(len(runs))]
    assert _observe(params, runs, mixed) == ref


# -- random workloads -------------------------------------------------------------------
_bits = st.one_of(st.just(0), st.integers(1, 12), st.integers(1, 200), st.sampled_from([64, 128, 1000]))


@st.composite
def _tile(draw, stages):
    return Tile(draw(st.sampled_from(stages)), draw(_bits), draw(_bits), draw(_bits),
                draw(st.one_of(st.just(0), st.just(0), _bits)))


@st.composite
def _workload(draw):
    params = (draw(st.integers(1, 8)), draw(st.integers(0, 4)), draw(st.integers(1, 4)),
              draw(st.integers(1, 16)), draw(st.integers(1, 3)), draw(st.integers(0, 3)),
              draw(st.integers(1, 8)))
    stages = draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=5, unique=True))
    runs = draw(st.lists(st.lists(_tile(stages), max_size=25), min_size=1, max_size=3))
    return params, runs


@settings(max_examples=250, deadline=None)
@given(_workload())
def test_fast_equals_simpy_on_random_workloads(workload):
    params, runs = workload
    _assert_same(params, runs)


def _random_runs(rng, n_runs, n_tiles, scale, p_zero, p_out, stages):
    """Tile lists whose fields are 0 with probability p_zero, else 1..scale (a write-back
    with probability p_out); some tiles are copies of the one before (equal durations)."""
    runs = []
    for _ in range(n_runs):
        tiles = []
        for _ in range(n_tiles):
            if tiles and rng.random() < 0.2:
                t = tiles[-1]
                tiles.append(Tile(rng.choice(stages), t.dram_in_bits, t.sram_bits, t.pe_ops, t.dram_out_bits))
                continue
            f = [0 if rng.random() < p_zero else rng.randint(1, scale) for _ in range(3)]
            out = rng.randint(1, scale) if rng.random() < p_out else 0
            tiles.append(Tile(rng.choice(stages), f[0], f[1], f[2], out))
        runs.append(tiles)
    return runs


@pytest.mark.parametrize("seed", range(12))
def test_fast_equals_simpy_on_long_tile_lists(seed):
    """Longer lists and wider ranges: DRAM- or port-bound, write-back heavy, latency 0."""
    rng = random.Random(seed)
    for _ in range(6):
        params = (rng.choice([1, 2, 16, 64]), rng.randint(0, 100), rng.randint(1, 4), rng.choice([8, 64, 256, 640]),
                  rng.randint(1, 4), rng.randint(0, 5), rng.choice([1, 4, 256]))
        stages = [f"L{i}" for i in range(rng.randint(1, 12))]
        runs = _random_runs(rng, rng.randint(1, 3), rng.randint(1, 120), rng.choice([10, 300, 20000]),
                            rng.choice([0.0, 0.3, 0.7]), rng.choice([0.0, 0.2, 0.9, 1.0]), stages)
        _assert_same(params, runs)


def test_fast_equals_simpy_where_everything_ties():
    """Unit durations of 0-4 cycles (no latency, 1 bit per cycle): most events coincide, so
    simpy's order within a time step (URGENT starts, expiring timeouts, then the events
    scheduled at that time, in order) decides who queues first."""
    rng = random.Random(2024)
    for _ in range(400):
        params = (1, rng.randint(0, 1), rng.randint(1, 3), 1, 1, rng.randint(0, 1), rng.choice([1, 2]))
        runs = [[Tile(rng.choice("ab"), *(rng.choice([0, 0, 1, 2, 3, 4]) for _ in range(3)),
                      rng.choice([0, 1, 2, 3])) for _ in range(rng.randint(1, 12))] for _ in range(2)]
        _assert_same(params, runs)


@pytest.mark.parametrize("buffers", [1, 3])
def test_other_buffer_counts_match_too(monkeypatch, buffers):
    """The kernel takes DOUBLE_BUFFERED as a parameter: one buffer, or three, as simpy does."""
    monkeypatch.setattr(components, "DOUBLE_BUFFERED", buffers)
    rng = random.Random(buffers)
    for _ in range(20):
        params = (rng.randint(1, 4), rng.randint(0, 3), rng.randint(1, 3), rng.randint(1, 8), 1, rng.randint(0, 2), 2)
        _assert_same(params, _random_runs(rng, 2, rng.randint(1, 30), 40, 0.3, 0.5, ["a", "b"]))


def test_tiles_in_layer_order_like_the_memory_hierarchy():
    """Consecutive tiles of a stage (a layer's channel passes), every field non-zero."""
    rng = random.Random(7)
    for _ in range(10):
        params = (rng.choice([8, 64]), rng.randint(0, 120), rng.randint(1, 2), 256, 1, rng.randint(0, 3), 256)
        tiles = []
        for layer in range(rng.randint(1, 10)):
            for _ in range(rng.randint(1, 6)):
                tiles.append(Tile(f"l{layer}", rng.randint(0, 50000), rng.randint(1, 200000),
                                  rng.randint(0, 100000), rng.choice([0, 0, rng.randint(1, 30000)])))
        _assert_same(params, [tiles, tiles])


def test_the_hand_schedules_of_test_memory_hierarchy_hold_on_the_fast_path():
    """tests/test_memory_hierarchy.py's schedule of one loader running one tile ahead."""
    tiles = [Tile("a", 64, 0, 100, 0) for _ in range(3)] + [Tile("a", 6400, 0, 100, 0)]
    env = simpy.Environment()
    pipe = TilePipeline(Dram(env, 64, 64, 1), Sram(env, 640, 1, 2, 1), PEArray(env, 1, 1, 1))
    stats = pipe.run(tiles, timing="fast")
    assert (stats.cycles, stats.stall_cycles, env.now) == (426, 26, 426)


def test_negative_fields_and_empty_lists_match_too():
    """Not produced by any architecture, but the model defines them (a negative write-back
    still starts a process that moves nothing)."""
    runs = [[], [Tile("a", -5, 3, -1, -7), Tile("b", 0, 0, 0, 0), Tile("a", 7, -2, 4, 9)], []]
    _assert_same((2, 1, 2, 4, 1, 1, 2), runs)


def test_run_arrays_is_run_on_the_tiles_the_columns_make():
    rng = random.Random(5)
    params = (2, 3, 2, 8, 1, 1, 2)
    for timing in ("fast", "simpy"):
        for _ in range(10):
            (tiles,) = _random_runs(rng, 1, rng.randint(0, 40), 50, 0.3, 0.5, ["x", "y", "z"])
            cols = [np.array([getattr(t, f) for t in tiles], dtype=np.int64)
                    for f in ("dram_in_bits", "sram_bits", "pe_ops", "dram_out_bits")]
            ref = _units(params)
            want = ref[4].run(tiles, timing="simpy")
            got_units = _units(params)
            got = got_units[4].run_arrays([t.stage for t in tiles], *cols, timing=timing)
            assert got == want
            assert [got_units[0].now, *(u.busy_cycles for u in got_units[1:4])] == \
                [ref[0].now, *(u.busy_cycles for u in ref[1:4])]


# -- dispatch ---------------------------------------------------------------------------
def test_timing_modes(monkeypatch):
    assert components.TIMING == "auto"
    with pytest.raises(ParameterError, match="--timing"):
        set_timing("quick")
    with pytest.raises(ParameterError, match="--timing"):
        TilePipeline(*_units((1, 0, 1, 8, 1, 0, 1))[1:4]).run([], timing="slow")

    calls = []
    monkeypatch.setattr(TilePipeline, "run_simpy", lambda self, tiles: calls.append("simpy"))
    monkeypatch.setattr(TilePipeline, "run_fast", lambda self, tiles: calls.append("fast") or "stats")
    pipe = TilePipeline(*_units((1, 0, 1, 8, 1, 0, 1))[1:4])
    for mode, expected in [("auto", ["fast"]), ("fast", ["fast"]), ("simpy", ["simpy"])]:
        monkeypatch.setattr(components, "TIMING", mode)
        calls.clear()
        pipe.run([Tile("a", 1, 1, 1, 1)])
        assert calls == expected


def test_inputs_beyond_the_exact_range_run_on_simpy():
    """A field of 2**60 bits (float division no longer rounds as the integer one): the
    compiled path declines and the run falls back to simpy, with the same figures."""
    params = (3, 1, 1, 8, 1, 1, 1)
    big = [Tile("a", 2 ** 60 + 1, 5, 5, 0), Tile("a", 1, 1, 1, 1)]
    assert TilePipeline(*_units(params)[1:4]).run_fast(big) is None
    assert _observe(params, [big], ["fast"]) == _observe(params, [big], ["simpy"])
    env, dram, sram, pe, pipe = _units(params)
    with dram.resource.request():  # a unit in use elsewhere: the compiled path declines
        assert pipe.run_fast([Tile("a", 1, 1, 1, 1)]) is None


# -- whole replays ----------------------------------------------------------------------
_CONTENDED = ["components.dram.bandwidth_bits_per_cycle=16", "components.dram.latency_cycles=3",
              "components.global_buffer.ports=1", "components.global_buffer.latency_cycles=2"]


@pytest.mark.parametrize("trace", ["tiny_synth_T4.h5", "tiny_resnet_T4.h5"])
@pytest.mark.parametrize("overrides", [None, _CONTENDED], ids=["spec", "contended"])
def test_memory_hierarchy_replays_are_identical_under_simpy_and_fast(trace, overrides):
    from sim.replay import replay
    from sim.trace import open_trace

    reports = {}
    try:
        for mode in ("simpy", "fast"):
            set_timing(mode)
            with open_trace(REPO / "traces" / trace) as tr:
                reports[mode] = replay(tr, "memory_hierarchy", ["snn", "ann"], "paper_v1_45nm",
                                       overrides=overrides, progress=False)
    finally:
        set_timing("auto")
    for simpy_rep, fast_rep in zip(reports["simpy"], reports["fast"]):
        for key in ("counts", "cycles", "stall_cycles", "layers", "utilisation"):
            assert fast_rep[key] == simpy_rep[key], key
        assert fast_rep == simpy_rep
    assert np.sum([r["cycles"] for r in reports["fast"]]) > 0
