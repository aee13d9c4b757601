"""The mapper: each network's cheapest mapping on each architecture, for the SNN and its twin alike.

The paper's question compares an *ideally optimised* ANN with the SNN, so a comparison must
not let one side run a naive mapping. Each architecture's registry row declares its mapping
space (``ArchKind.mapping_space``): the options that change counts or cycles but not the
hardware, with their candidate values; a :class:`~sim.arch.registry.Capability` option is
one the hardware may offer (the spec's value), which a mapping may use or leave unused.
Everything else in a spec — sizes, widths, bandwidths, zero skipping, cost conventions — is
hardware and is never changed.

Search: every point of the space is a candidate (the spaces are small: 4 to 12 points, so the
search is exhaustive and its answer optimal within the space; no heuristic is needed). For
each mode separately:

- objective ``energy``: every candidate is evaluated with the architecture's closed form
  (exact against the simulator, term by term, and priced like a report), in milliseconds to
  a fraction of a second per candidate;
- ``cycles`` and ``edp`` (energy x cycles): no closed form predicts cycles, so every candidate
  is simulated on the same samples (one pass over the samples for all candidates).

Ties keep the option values of the spec (the fewest options changed, then the space's order),
so ``--map best`` reproduces the spec's own mapping when nothing beats it. A candidate the
hardware cannot hold (a ParameterError or SpecError from the closed form or the simulator,
e.g. a partition that needs more cores than the mesh has) is skipped and counted as
infeasible. The chosen mapping is then simulated once by the caller, and
:func:`check_prediction` compares its counts with the closed form's prediction exactly.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

from sim.arch.registry import Capability, PerLayer, arch_kind
from sim.errors import ParameterError, SpecError

OBJECTIVES = ("energy", "cycles", "edp")
MAP_POLICIES = ("spec", "best")


def _text(v) -> str:
    if isinstance(v, list):   # layer names, quoted: YAML would read a name like 0 as a number
        return json.dumps(v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def mapping_space(spec) -> dict[str, tuple]:
    """The candidate values of each searchable mapping option of ``spec``'s architecture (a
    per-layer option: none and every layer; the search adds its per-layer choice)."""
    out = {}
    for key, values in arch_kind(spec.architecture).mapping_space.items():
        if isinstance(values, Capability):
            out[key] = values.values(spec.mapping[key])
        elif isinstance(values, PerLayer):
            out[key] = (False, True)
        else:
            out[key] = tuple(values)
    return out


def per_layer_options(spec) -> list[str]:
    return [k for k, v in arch_kind(spec.architecture).mapping_space.items() if isinstance(v, PerLayer)]


def candidates(spec) -> list[dict]:
    """Every point of the space, as {option: value}: the spec's own mapping first, then the
    others ordered by how many options they change (then the space's order)."""
    space = mapping_space(spec)
    points = [dict(zip(space, combo)) for combo in itertools.product(*space.values())]
    own = {k: spec.mapping[k] for k in space}

    def changed(p):
        return sum(p[k] != own[k] for k in p)

    # the spec's own values may lie outside the space (e.g. stage_buffer 3): it is a candidate too
    if own not in points:
        points.append(own)
    return sorted(points, key=changed)


def _distinct(values) -> list:
    seen, out = set(), []
    for v in values:
        key = json.dumps(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def overrides_of(options: dict) -> list[str]:
    return [f"mapping.{k}={_text(v)}" for k, v in options.items()]


@dataclass
class Candidate:
    options: dict
    energy_pj: float | None = None
    cycles: int | None = None
    infeasible: str | None = None
    error: object = field(default=None, repr=False)   # the refusal itself (re-raised when nothing fits)

    def score(self, objective: str) -> float:
        if objective == "energy":
            return self.energy_pj
        if objective == "cycles":
            return float(self.cycles)
        return self.energy_pj * self.cycles


@dataclass
class MappingChoice:
    """The mapper's answer for one (architecture, mode)."""

    architecture: str
    spec_name: str
    mode: str
    objective: str
    evaluated_by: str
    chosen: Candidate
    own: Candidate
    candidates: list[Candidate]
    spec: object = field(repr=False, default=None)        # the spec with the chosen mapping
    prediction: object = field(repr=False, default=None)  # closed form of the chosen mapping
    seconds: float = 0.0   # wall clock of the search (not in reports: a report is a pure function of its inputs)

    @property
    def changed(self) -> dict:
        return {k: v for k, v in self.chosen.options.items() if self.own.options.get(k) != v}

    def as_dict(self) -> dict:
        feasible = [c for c in self.candidates if c.infeasible is None]
        return {"policy": "best", "objective": self.objective, "evaluated_by": self.evaluated_by,
                "mode": self.mode, "space": {k: _distinct(c.options[k] for c in self.candidates)
                                              for k in self.chosen.options},
                "chosen": self.chosen.options, "changed_from_spec": self.changed,
                "spec_mapping": self.own.options,
                "candidates_evaluated": len(feasible), "candidates_infeasible": len(self.candidates) - len(feasible),
                "chosen_energy_pj": self.chosen.energy_pj, "spec_mapping_energy_pj": self.own.energy_pj,
                "chosen_cycles": self.chosen.cycles, "spec_mapping_cycles": self.own.cycles,
                "all": [{"options": c.options, "energy_pj": c.energy_pj, "cycles": c.cycles,
                         **({"infeasible": c.infeasible} if c.infeasible else {})} for c in self.candidates]}


def _per_layer_candidates(spec, cands: list[Candidate], preds: dict, evaluate_layer) -> list[Candidate]:
    """For each per-layer option and each setting of the other options: the option applied to
    each layer alone (``evaluate_layer(options)`` -> prediction or None when refused), kept
    where that layer then costs less than without it, as one new candidate — unless no layer
    gains, or the list is already a candidate. When each layer's counts depend only on its own
    choice (memory_hierarchy under layer_major), this is the best of all 2^layers assignments."""
    out = []
    for key in per_layer_options(spec):
        for i, off in enumerate(cands):
            if off.options[key] is not False or i not in preds:
                continue
            base = {l.name: l.energy_pj for l in preds[i].layers}
            gain = []
            for name in base:
                p = evaluate_layer({**off.options, key: [name]})
                if p is not None and next(l.energy_pj for l in p.layers if l.name == name) < base[name]:
                    gain.append(name)
            options = {**off.options, key: True if len(gain) == len(base) else gain}
            if gain and all(c.options != options for c in cands + out):
                out.append(Candidate(options))
    return out


def _why(exc) -> str:
    """Why a candidate was refused, without the spec's file path (a report does not depend on
    where the repository lies)."""
    field, message = getattr(exc, "field", None), getattr(exc, "message", str(exc))
    return f"{field}: {message}" if field else message


def _pick(cands: list[Candidate], objective: str, where: str) -> Candidate:
    feasible = [c for c in cands if c.infeasible is None]
    if not feasible:   # the spec's own mapping's refusal, as --map spec would give it
        raise cands[0].error
    best = min(c.score(objective) for c in feasible)
    return next(c for c in feasible if c.score(objective) == best)   # candidates are ordered: ties keep the spec


def search(trace, spec, mode: str, table, *, objective: str = "energy", samples: int | None = None,
           stats=None, progress: bool = False) -> MappingChoice:
    """The best mapping of ``spec`` for ``mode`` on ``trace``'s first ``samples`` samples."""
    return search_modes(trace, spec, [mode], table, objective=objective, samples=samples, stats=stats,
                        progress=progress)[0]


def search_modes(trace, spec, modes: list[str], table, *, objective: str = "energy",
                 samples: int | None = None, stats=None, progress: bool = False) -> list[MappingChoice]:
    """:func:`search` for each of ``modes``, each candidate evaluated in every mode before the
    next candidate (a closed form that caches per mapping, like the neuromorphic routes, then
    needs to keep one mapping only)."""
    from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats

    if objective not in OBJECTIVES:
        raise ParameterError(None, "--objective", f"unknown objective {objective!r} (known: {', '.join(OBJECTIVES)})")
    t0 = time.perf_counter()
    n = trace.n_samples if samples is None else samples
    stats = trace_event_stats(trace, n) if stats is None else stats
    bits = trace_activation_bits(trace)
    cf = arch_kind(spec.architecture).closed_form_module()
    grid = candidates(spec)
    out: dict[str, MappingChoice] = {}
    live, own_preds = [], {}
    for mode in modes:
        priced, own_preds[mode] = _price_own(cf, spec, trace, stats, mode, bits, table)
        if objective != "cycles" and not priced:
            # a table that cannot price this architecture (the report stays unpriced): nothing
            # to compare, so the spec's own mapping runs and the report says why
            own = Candidate(grid[0])
            out[mode] = MappingChoice(spec.architecture, spec.name, mode, objective,
                                      f"not searched: energy table '{table.name}' cannot price {spec.architecture}",
                                      own, own, [own], spec,
                                      cf.predict(spec, trace.layers, stats, trace.T, mode, bits, None), 0.0)
        else:
            live.append(mode)
    cands = {m: [Candidate(p) for p in grid] for m in live}
    specs: dict[int, object] = {0: spec}   # grid[0] is the spec's own mapping
    preds: dict[str, dict] = {m: {} for m in live}
    for m in live:   # the spec's own mapping, already priced above
        if own_preds[m] is not None:
            preds[m][0] = own_preds[m]
            cands[m][0].energy_pj = own_preds[m].energy_pj

    def evaluate(mode, i, c, store):
        try:
            if i not in store:
                store[i] = spec.with_overrides(overrides_of(c.options))
            preds[mode][i] = cf.predict(store[i], trace.layers, stats, trace.T, mode, bits, table)
            c.energy_pj = preds[mode][i].energy_pj
        except (ParameterError, SpecError) as exc:
            c.infeasible, c.error = _why(exc), exc

    for i in range(len(grid)):
        for mode in live:
            if i not in preds[mode]:
                evaluate(mode, i, cands[mode][i], specs)
    for mode in live:
        mine, specs_m = cands[mode], dict(specs)

        def evaluate_layer(options, mode=mode):
            try:
                return cf.predict(spec.with_overrides(overrides_of(options)), trace.layers, stats, trace.T, mode,
                                  bits, table)
            except (ParameterError, SpecError):
                return None

        if objective == "energy":
            for extra in _per_layer_candidates(spec, mine, preds[mode], evaluate_layer):
                mine.append(extra)   # indices past the grid: this mode's own candidates
                evaluate(mode, len(mine) - 1, extra, specs_m)
        evaluated_by = "closed form"
        if objective != "energy":
            from sim.replay import count_runs

            ok = [i for i, c in enumerate(mine) if c.infeasible is None]
            try:
                counted = count_runs(trace, [(specs_m[i], mode) for i in ok], n, progress)
            except (ParameterError, SpecError):   # one candidate the simulator refuses: count them one by one
                counted = []
                for i in ok:
                    try:
                        counted += count_runs(trace, [(specs_m[i], mode)], n, False)
                    except (ParameterError, SpecError) as exc:
                        mine[i].infeasible, mine[i].error = _why(exc), exc
                        counted.append(None)
            for i, c in zip(ok, counted):
                if c is not None:
                    mine[i].cycles = int(c.result.cycles)
            evaluated_by = "closed form (energy) and simulation (cycles)"
        chosen = _pick(mine, objective, f"{spec.name} {mode}")
        k = mine.index(chosen)
        out[mode] = MappingChoice(spec.architecture, spec.name, mode, objective, evaluated_by, chosen, mine[0],
                                  mine, specs_m[k], preds[mode][k], time.perf_counter() - t0)
    return [out[m] for m in modes]


def _price_own(cf, spec, trace, stats, mode, bits, table) -> tuple[bool, object]:
    """(whether ``table`` prices ``spec``'s own mapping, its priced prediction or None). A
    missing table entry is a SpecError while the unpriced prediction succeeds; a mapping the
    spec's checks refuse counts as priceable (None: the search reports the refusal)."""
    try:
        return True, cf.predict(spec, trace.layers, stats, trace.T, mode, bits, table)
    except SpecError:
        try:
            cf.predict(spec, trace.layers, stats, trace.T, mode, bits, None)
        except (ParameterError, SpecError):
            return True, None
        return False, None
    except ParameterError:
        return True, None


def check_prediction(report: dict, prediction) -> dict:
    """The chosen mapping, simulated, against the closed form's prediction: every layer's
    every ``component.action`` count, exactly. Returns {"exact": bool, "differences": [...]}."""
    diffs = []
    for lr, lp in zip(report["layers"], prediction.layers):
        for key in sorted(set(lr["counts"]) | set(lp.counts)):
            got, want = lr["counts"].get(key, 0), lp.counts.get(key, 0)
            if got != want:
                diffs.append({"layer": lr["name"], "term": key, "counted": got, "predicted": want})
    if len(report["layers"]) != len(prediction.layers):
        diffs.append({"layer": None, "term": "layers", "counted": len(report["layers"]),
                      "predicted": len(prediction.layers)})
    return {"exact": not diffs, "differences": diffs[:20]}
