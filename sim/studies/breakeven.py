"""Simulated break-even sparsity: the spike rate at which the simulated E_SNN equals the
simulated E_ANN, beside the closed forms' break-even points.

For each T, synthetic traces of a model shape (:func:`sim.trace.synthetic.write_synthetic_trace`:
Binomial(T, r) ANN levels and their exact IF spike trains) are written at a few spike rates r
and replayed in both modes on every architecture. Both energies move with r (the ANN twin's
density is 1 − (1 − r)^T), so g(r) = E_SNN − E_ANN is found where it changes sign: the
search starts at the per-architecture closed form's root, steps outward until g changes sign,
then interpolates linearly inside the bracket (regula falsi) until the bracket is narrower than
``tol``. The SNN is cheaper below the root's rate, i.e. above the sparsity s* = 1 − r*.

Closed forms beside it: the paper's v1 s*(T) (memory_hierarchy, spatial_dataflow) and the
per-architecture closed form's root, exact in expectation. Without a max-pool, E_SNN is
affine in r and E_ANN affine in the density (:func:`sim.analytic.layer_stats.expected_event_stats`),
so four predictions give both lines and the root is solved numerically. A max-pool's output
(the OR of its window) is not linear in r, nor is what its consumers receive: for such a model
the closed form is evaluated at every rate the root search asks for (a coarser grid, then
bisection), each an exact expectation.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from sim.arch.energy import PAPER_V1_TABLE as DEFAULT_ENERGY

SCHEMA = "snn-energy-breakeven/1"
GRID = 4001  # rates on which the closed-form g(r) is scanned for sign changes


def _q(rate: float) -> float:
    """Rates are simulated (and cached) at 9 decimals."""
    return float(round(rate, 9))


def _root(g, lo: float, hi: float, iters: int = 60) -> float:
    glo = g(lo)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if (g(mid) < 0) == (glo < 0):
            lo, glo = mid, g(mid)
        else:
            hi = mid
    return 0.5 * (lo + hi)


def classify(g, grid: np.ndarray) -> dict:
    """Break-even of g(r) = E_SNN − E_ANN over rates ``grid`` (g vectorised): ``rate`` is the
    first rate where g turns from negative to non-negative; ``kind`` 'crossing', 'always' (the
    SNN is cheaper at every rate) or 'none' (never cheaper)."""
    v = g(grid)
    neg = v < 0
    if neg.all():
        return {"kind": "always", "rate": 1.0, "s_star": 0.0}
    if not neg.any():
        return {"kind": "none", "rate": None, "s_star": None}
    up = np.flatnonzero(neg[:-1] & ~neg[1:])
    if not len(up):  # cheaper only at the top of the range
        return {"kind": "always", "rate": 1.0, "s_star": 0.0}
    i = up[0]
    r = _root(lambda x: float(g(np.array([x]))[0]), float(grid[i]), float(grid[i + 1]))
    out = {"kind": "crossing", "rate": r, "s_star": 1.0 - r}
    if not neg[0]:  # g turned negative somewhere below: the SNN wins only inside a window
        j = np.flatnonzero(~neg[:-1] & neg[1:])[0]
        r_down = _root(lambda x: float(g(np.array([x]))[0]), float(grid[j]), float(grid[j + 1]))
        out["s_max"] = 1.0 - r_down
        out["note"] = (f"the SNN costs more at rate 0 too: cheaper only for sparsity in "
                       f"({1.0 - r:.4f}, {1.0 - r_down:.4f})")
    return out


def closed_form_lines(spec, layers, T: int, table) -> dict:
    """E_SNN(r) = a + b·r and E_ANN(ρ) = c + d·ρ (pJ per sample), from the per-architecture
    closed form at rates 0 and 1 and densities 0 and 1."""
    from sim.arch.registry import arch_kind
    from sim.analytic.layer_stats import expected_event_stats
    from sim.trace import qt_activation_bits

    cf, bits = arch_kind(spec.architecture).closed_form_module(), qt_activation_bits(T)
    e = {}
    for mode, key in (("snn", "rate"), ("ann", "density")):
        for x in (0.0, 1.0):
            st = expected_event_stats(layers, T, rate=x if key == "rate" else 0.0,
                                      density=x if key == "density" else None)
            e[(mode, x)] = cf.predict(spec, layers, st, T, mode, bits, table).energy_pj
    return {"snn_fixed_pj": e[("snn", 0.0)], "snn_per_rate_pj": e[("snn", 1.0)] - e[("snn", 0.0)],
            "ann_fixed_pj": e[("ann", 0.0)], "ann_per_density_pj": e[("ann", 1.0)] - e[("ann", 0.0)]}


#: Rates on which a non-linear (max-pool) closed form is scanned before bisection.
EXACT_GRID = 101


def is_linear_in_rate(layers) -> bool:
    """The expected statistics are affine in the spike rate: no max-pool (its OR is not)."""
    return not any(l.kind == "maxpool" for l in layers)


def closed_form_curve(spec, layers, T: int, table):
    """``energy(r, rho)`` -> (E_SNN, E_ANN) pJ per sample from the per-architecture closed form
    at spike rate r (ANN density: the synthetic traces' when ``rho`` is None, else ``rho``),
    evaluated exactly at each call and cached: for models whose energy is not affine in r."""
    from sim.arch.registry import arch_kind
    from sim.analytic.layer_stats import expected_event_stats
    from sim.trace import qt_activation_bits

    cf, bits = arch_kind(spec.architecture).closed_form_module(), qt_activation_bits(T)
    cache: dict = {}

    def energy(r: float, rho: float | None = None) -> tuple[float, float]:
        key = (float(r), rho)
        if key not in cache:
            snn = cf.predict(spec, layers, expected_event_stats(layers, T, rate=float(r)), T, "snn", bits, table)
            ann = cf.predict(spec, layers, expected_event_stats(layers, T, rate=float(r), density=rho), T, "ann",
                             bits, table)
            cache[key] = (snn.energy_pj, ann.energy_pj)
        return cache[key]
    return energy


def best_curve(curves: list):
    """``energy(r, rho)`` of the mapper's choice at every rate: each mode's cheapest candidate
    (``curves``: one :func:`closed_form_curve` or :func:`lines_curve` per candidate mapping)."""
    def energy(r: float, rho: float | None = None) -> tuple[float, float]:
        e = [c(r, rho) for c in curves]
        return min(x[0] for x in e), min(x[1] for x in e)
    return energy


def lines_curve(lines: dict, T: int):
    """``energy(r, rho)`` from a closed form's lines (an affine model, no max-pool)."""
    def energy(r: float, rho: float | None = None) -> tuple[float, float]:
        dens = (1.0 - (1.0 - r) ** T) if rho is None else rho
        return (lines["snn_fixed_pj"] + lines["snn_per_rate_pj"] * r,
                lines["ann_fixed_pj"] + lines["ann_per_density_pj"] * dens)
    return energy


def closed_form_break_even(lines: dict, T: int, rho: float | None = None, exact=None) -> dict:
    """Root of the closed form's E_SNN(r) − E_ANN: the ANN twin's density is the synthetic
    traces' 1 − (1 − r)^T, or with ``rho`` a fixed density (the v1 model's assumption: the
    ANN's cost does not move with the SNN's sparsity). ``exact``: a :func:`closed_form_curve`
    to evaluate instead of the lines (a model with a max-pool)."""
    if exact is not None:
        def g(r):
            return np.array([np.subtract(*exact(float(x), rho)) for x in np.atleast_1d(r)])
        grid = np.linspace(0.0, 1.0, EXACT_GRID)
        return {**classify(g, grid), "rate_of_smallest_gap": float(grid[np.argmin(g(grid))]), "lines": lines,
                "evaluated": "exactly at every rate (the model has a max-pool: energy is not affine in the rate)"}

    def g(r):
        dens = (1.0 - (1.0 - r) ** T) if rho is None else rho
        return (lines["snn_fixed_pj"] + lines["snn_per_rate_pj"] * r - lines["ann_fixed_pj"]
                - lines["ann_per_density_pj"] * dens)

    grid = np.linspace(0.0, 1.0, GRID)
    return {**classify(g, grid), "rate_of_smallest_gap": float(grid[np.argmin(g(grid))]), "lines": lines}


class SimulatedEnergies:
    """E_SNN and E_ANN per sample (pJ) of every architecture at a spike rate, from synthetic
    traces written into ``workdir``; each rate is simulated once and cached."""

    def __init__(self, model: str, T: int, specs: list, table, samples: int, seed: int,
                 workdir: Path, progress: bool, map_policy: str = "spec"):
        from sim.trace.shapes import model_layers

        self.map_policy = map_policy
        self.mappings: dict[float, dict[str, dict]] = {}   # rate -> arch -> {mode: options changed}
        self.layers, self.input_shape = model_layers(model, T)
        self.model, self.T, self.specs, self.table = model, T, specs, table
        self.archs = [s.name for s in specs]
        self.samples, self.seed, self.dir, self.progress = samples, seed, workdir, progress
        self.cache: dict[float, dict[str, tuple[float, float]]] = {}

    def at(self, rate: float) -> dict[str, tuple[float, float]]:
        from sim.replay import mapped_reports
        from sim.trace import open_trace
        from sim.trace.synthetic import write_synthetic_trace

        rate = _q(rate)
        if rate not in self.cache:
            path = self.dir / f"{self.model}_T{self.T}_r{rate:.9f}.h5"
            write_synthetic_trace(path, self.layers, self.input_shape, model=self.model, T=self.T,
                                  n_samples=self.samples, rate=rate, seed=self.seed, with_weights=False)
            with open_trace(path) as tr:  # every architecture from one decode of each sample
                reports, _ = mapped_reports(tr, self.specs, ["snn", "ann"], self.table, self.samples,
                                            self.map_policy)
            for r in reports:
                if "mapping" in r:
                    self.mappings.setdefault(rate, {}).setdefault(r["arch"]["name"], {})[r["mode"]] = \
                        r["mapping"]["changed_from_spec"]
            e = {(r["arch"]["name"], r["mode"]): r["energy_pj"]["total"] / self.samples for r in reports}
            out = {arch: (e[(arch, "snn")], e[(arch, "ann")]) for arch in self.archs}
            path.unlink()
            self.cache[rate] = out
            if self.progress:
                print(f"  T={self.T} rate {rate:.5f}: " + ", ".join(
                    f"{a} {s / n:.3f}" for a, (s, n) in out.items()), file=sys.stderr)
        return self.cache[rate]

    def g(self, arch: str, rate: float) -> float:
        s, a = self.at(rate)[arch]
        return s - a


def simulated_break_even(sim: SimulatedEnergies, arch: str, cf: dict, tol: float,
                         max_evals: int = 12) -> dict:
    """Bracket the sign change of the simulated g(r), starting at the closed form's root
    (``cf``), and interpolate. Where the closed form finds none, the SNN is checked at rate 0
    and where the closed form's gap is smallest; both non-negative: none."""
    if cf["kind"] == "none":
        r0 = cf["rate_of_smallest_gap"]
        if sim.g(arch, 0.0) >= 0 and sim.g(arch, r0) >= 0:
            return {"kind": "none", "rate": None, "s_star": None, "evaluated": _points(sim, arch)}
    else:
        r0 = cf["rate"]
    r0 = _q(min(0.95, max(0.002, r0)))
    g0 = sim.g(arch, r0)
    lo = hi = None
    if g0 < 0:
        lo, glo, r = r0, g0, r0
        while hi is None:
            r = _q(min(1.0, r * 1.3 + 0.002))
            gr = sim.g(arch, r)
            if gr >= 0:
                hi, ghi = r, gr
            elif r >= 1.0:
                return {"kind": "always", "rate": 1.0, "s_star": 0.0, "evaluated": _points(sim, arch)}
            else:
                lo, glo = r, gr
    else:
        hi, ghi, r = r0, g0, r0
        while lo is None:
            r = 0.0 if r < 0.004 else _q(r / 1.5)
            gr = sim.g(arch, r)
            if gr < 0:
                lo, glo = r, gr
            elif r <= 0.0:
                return {"kind": "none", "rate": None, "s_star": None, "evaluated": _points(sim, arch)}
            else:
                hi, ghi = r, gr
    evals = 0
    while hi - lo > tol and evals < max_evals:
        r = lo + (hi - lo) * (-glo) / (ghi - glo)
        r = _q(min(max(r, lo + 0.1 * (hi - lo)), hi - 0.1 * (hi - lo)))  # keep regula falsi moving
        gr = sim.g(arch, r)
        evals += 1
        if gr < 0:
            lo, glo = r, gr
        else:
            hi, ghi = r, gr
    rate = lo + (hi - lo) * (-glo) / (ghi - glo)
    return {"kind": "crossing", "rate": rate, "s_star": 1.0 - rate,
            "bracket": {"rate_low": lo, "g_low_pj": glo, "rate_high": hi, "g_high_pj": ghi},
            "evaluated": _points(sim, arch)}


def _points(sim: SimulatedEnergies, arch: str) -> list[dict]:
    return [{"rate": r, "e_snn_pj": v[arch][0], "e_ann_pj": v[arch][1],
             **({"mapping_changed": sim.mappings[r][arch]} if r in sim.mappings else {})}
            for r, v in sorted(sim.cache.items())]


def run_breakeven(Ts: list[int], arch: str = "all", model: str = "vgg16", samples: int = 1,
                  energy: str = DEFAULT_ENERGY, seed: int = 0, tol: float = 0.002,
                  progress: bool = True, map_policy: str = "spec") -> dict:
    """The break-even document (schema :data:`SCHEMA`): per architecture and T, the simulated
    s*, the per-architecture closed form's s* and the paper's v1 s* (where it has one).
    ``map_policy`` ``best``: at every rate each mode runs its cheapest mapping (the closed
    form's E(r) is the minimum over the mapping space; each simulated point runs the mapper on
    its trace), so the SNN and its twin are compared best against best."""
    from sim.analytic import paper_v1 as v1
    from sim.arch.registry import architecture_names
    from sim.arch.energy import load_energy_table
    from sim.arch.spec import load_arch_spec
    from sim.errors import ParameterError
    from sim.trace.shapes import MODEL_SHAPES, model_layers

    if model not in MODEL_SHAPES:
        raise ParameterError(None, "--model", f"unknown model shape {model!r} (have {', '.join(MODEL_SHAPES)})")
    if samples < 1:
        raise ParameterError(None, "--samples", f"must be >= 1, got {samples}")
    if not 0 < tol < 1:
        raise ParameterError(None, "--tol", f"must be in (0, 1), got {tol}")
    table = load_energy_table(energy)
    specs = [load_arch_spec(a) for a in architecture_names(arch)]
    try:
        c = v1.V1Constants.from_table(table)
    except Exception:  # a table without the v1 constants: no v1 column
        c = None
    from sim.replay.mapper import MAP_POLICIES

    if map_policy not in MAP_POLICIES:
        raise ParameterError(None, "--map", f"unknown policy {map_policy!r} (known: {', '.join(MAP_POLICIES)})")
    doc = {"schema": SCHEMA, "model": model, "samples": samples, "seed": seed, "energy_table": table.name,
           "tolerance_rate": tol, "Ts": Ts, "map": map_policy,
           "method": "synthetic Binomial(T, r) traces replayed in both modes; the sign change of "
                     "E_SNN - E_ANN bracketed from the closed form's root and interpolated linearly",
           "architectures": {s.name: [] for s in specs}}
    with tempfile.TemporaryDirectory(prefix="breakeven_") as tmp:
        for T in Ts:
            layers, _ = model_layers(model, T)
            sim = SimulatedEnergies(model, T, specs, table, samples, seed, Path(tmp), progress, map_policy)
            for spec in specs:
                lines = closed_form_lines(spec, layers, T, table)
                exact = None if is_linear_in_rate(layers) else closed_form_curve(spec, layers, T, table)
                if map_policy == "best":
                    exact = best_curve(_candidate_curves(spec, layers, T, table))
                cf = closed_form_break_even(lines, T, exact=exact)
                if map_policy == "best":
                    cf["evaluated"] = ("the minimum over the mapping space of each mode's closed form, at every "
                                       "rate; 'lines' are the spec's own mapping's")
                row = {"T": T, "closed_form": cf,
                       "simulated": simulated_break_even(sim, spec.name, cf, tol)}
                if c is not None and spec.architecture in v1.ARCHITECTURES:
                    be = v1.break_even(spec.architecture, c, T)
                    kind = "none" if not be.attainable else "always" if be.s_star <= 0 else "crossing"
                    row["paper_v1"] = {"kind": kind, "s_star": None if kind == "none" else max(0.0, be.s_star),
                                       "s_star_unbounded": be.s_star}
                if c is not None:
                    fixed = closed_form_break_even(lines, T, c.rho, exact=exact)
                    row["closed_form_fixed_rho"] = {**{k: v for k, v in fixed.items() if k != "lines"},
                                                    "rho": c.rho}
                doc["architectures"][spec.name].append(row)
    return doc


def _candidate_curves(spec, layers, T: int, table) -> list:
    """The closed-form energy curve of every mapping in the spec's space that its checks accept
    (an invalid combination, e.g. weight tiling under time-major order, is skipped)."""
    from sim.errors import ParameterError, SpecError
    from sim.replay.mapper import candidates, overrides_of

    out = []
    for c in candidates(spec):
        try:
            cand = spec.with_overrides(overrides_of(c))
            if is_linear_in_rate(layers):
                out.append(lines_curve(closed_form_lines(cand, layers, T, table), T))
            else:
                curve = closed_form_curve(cand, layers, T, table)
                curve(0.0)   # evaluates the closed form once: an invalid mapping raises here
                out.append(curve)
        except (ParameterError, SpecError):
            pass
    return out


def _cell(x: dict | None) -> str:
    if not x:
        return "-"
    if x["kind"] == "none":
        return "none"
    if x["kind"] == "always":
        return "always"
    return f"{x['s_star']:.4f}"


def format_text(doc: dict) -> str:
    mapping = ("each mode on its cheapest mapping at every rate (--map best)" if doc.get("map") == "best"
               else "the specs' own mappings (--map spec)")
    lines = [f"Break-even sparsity s* (the SNN costs less than its ANN twin when s > s*): synthetic "
             f"{doc['model']} traces, {doc['samples']} sample(s), energy table {doc['energy_table']}, {mapping}",
             "'none': the SNN costs more at every spike rate; 'always': less at every rate; "
             "ANN twin density 1-(1-r)^T as in the traces, except 'cf fixed rho' (the v1 assumption)", ""]
    rho = next((r["closed_form_fixed_rho"]["rho"] for rows in doc["architectures"].values() for r in rows
                if "closed_form_fixed_rho" in r), None)
    fixed = "cf rho=" + (f"{rho:g}" if rho is not None else "-")
    head = (f"{'architecture':<20}{'T':>3}{'simulated':>11}{'closed form':>13}{'sim - cf':>10}"
            f"{fixed:>13}{'paper v1':>10}  bracket (rates)")
    lines += [head, "-" * len(head)]
    for arch, rows in doc["architectures"].items():
        for r in rows:
            s, cf = r["simulated"], r["closed_form"]
            diff = (f"{s['s_star'] - cf['s_star']:+.4f}" if s["s_star"] is not None and cf["s_star"] is not None
                    else "")
            br = s.get("bracket")
            br = f"  [{br['rate_low']:.4f}, {br['rate_high']:.4f}]" if br else ""
            lines.append(f"{arch:<20}{r['T']:>3}{_cell(s):>11}{_cell(cf):>13}{diff:>10}"
                         f"{_cell(r.get('closed_form_fixed_rho')):>13}{_cell(r.get('paper_v1')):>10}{br}")
    notes = [f"{arch} T={r['T']}: {r['closed_form']['note']}" for arch, rows in doc["architectures"].items()
             for r in rows if r["closed_form"].get("note")]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
