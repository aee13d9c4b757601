"""The mapper on VGG16 (issue 16): for the bundled trace and a synthetic trace at the paper's
7.57 % spike rate, per architecture and mode, the mapper's time and choice, then every mapping
of the space *simulated* to check that none is cheaper than the choice, and that the choice's
simulated counts equal the closed form's prediction. Prints a table on stdout (JSON with
--json); progress on stderr.

    python benchmarks/mapper_vgg16.py --samples 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.arch.energy import load_energy_table  # noqa: E402
from sim.arch.registry import ARCH_KINDS  # noqa: E402
from sim.arch.spec import load_arch_spec  # noqa: E402
from sim.errors import ParameterError, SpecError  # noqa: E402
from sim.replay.mapper import candidates, check_prediction, overrides_of, search  # noqa: E402
from sim.replay import count_runs  # noqa: E402
from sim.report import build_report  # noqa: E402
from sim.trace import open_trace  # noqa: E402

PAPER_RATE = 0.0757


def check_trace(path: str, samples: int, table) -> list[dict]:
    rows = []
    with open_trace(path) as tr:
        for kind in ARCH_KINDS:
            spec = load_arch_spec(kind.name)
            for mode in ("snn", "ann"):
                t0 = time.perf_counter()
                choice = search(tr, spec, mode, table, samples=samples)
                seconds = time.perf_counter() - t0
                runs, opts = [], []
                every = candidates(spec) + [c.options for c in choice.candidates if c.options not in candidates(spec)]
                for c in every:   # the grid and the per-layer candidates the search added
                    try:
                        runs.append((spec.with_overrides(overrides_of(c)), mode))
                        opts.append(c)
                    except (ParameterError, SpecError):
                        pass
                energies = []
                for (cspec, m), c in zip(runs, opts):
                    try:
                        counted = count_runs(tr, [(cspec, m)], samples, progress=False)[0]
                    except (ParameterError, SpecError):
                        continue
                    rep = build_report(counted.result, cspec, table, {})
                    energies.append((rep["energy_pj"]["total"], c, rep))
                chosen = next(e for e in energies if e[1] == choice.chosen.options)
                ok = all(chosen[0] <= e * (1 + 1e-12) for e, _, _ in energies)
                exact = check_prediction(chosen[2], choice.prediction)["exact"]
                own = next(e for e in energies if e[1] == choice.own.options)
                rows.append({"trace": path, "arch": kind.name, "mode": mode, "mapper_seconds": round(seconds, 3),
                             "candidates_simulated": len(energies), "chosen": choice.changed or "spec's own",
                             "best_energy_pj": chosen[0], "spec_energy_pj": own[0],
                             "best_is_minimum_of_simulated": ok, "closed_form_equals_counts": exact})
                print(f"{Path(path).name} {kind.name} {mode}: {seconds:.2f} s, {len(energies)} simulated, "
                      f"min ok {ok}, exact {exact}", file=sys.stderr)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    table = load_energy_table("paper_v1_45nm")
    rows = check_trace("traces/vgg16_fmnist_T6.h5", args.samples, table)
    with tempfile.TemporaryDirectory() as tmp:
        synth = str(Path(tmp) / "vgg16_r0757.h5")
        from sim.cli import main as cli
        assert cli(["synth", "--model", "vgg16", "--T", "6", "--rate", str(PAPER_RATE), "--samples",
                    str(args.samples), "--seed", "0", "--out", synth]) == 0
        rows += check_trace(synth, args.samples, table)
    print(f"{'trace':<22}{'arch':<18}{'mode':<5}{'mapper s':>9}{'sims':>5}{'E best uJ':>12}{'E spec uJ':>12}"
          f"  {'min?':<5}{'exact':<6}chosen")
    for r in rows:
        print(f"{Path(r['trace']).name:<22}{r['arch']:<18}{r['mode']:<5}{r['mapper_seconds']:>9.2f}"
              f"{r['candidates_simulated']:>5}{r['best_energy_pj'] / 1e6:>12.2f}{r['spec_energy_pj'] / 1e6:>12.2f}"
              f"  {str(r['best_is_minimum_of_simulated']):<5}{str(r['closed_form_equals_counts']):<6}{r['chosen']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["best_is_minimum_of_simulated"] and r["closed_form_equals_counts"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
