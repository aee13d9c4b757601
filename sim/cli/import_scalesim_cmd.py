"""``run_sim.py import-scalesim CONFIG.cfg TOPOLOGY.csv --out DIR``: a SCALE-Sim config as a
systolic_array arch spec and its conv topology as one synthetic dense trace per row, so the
same case replays here (docs/peers.md, "SCALE-Sim")."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import-scalesim", help="turn a SCALE-Sim config and conv topology into an arch spec and traces",
        description="Read a SCALE-Sim 3 config (ArrayHeight, ArrayWidth, Ifmap/Filter/OfmapSramSzkB, Dataflow, "
                    "and Bandwidth in USER mode) and conv topology (one row per layer, its input already "
                    "padded), and write DIR/arch.yaml (a systolic_array spec), one dense synthetic trace per "
                    "topology row (DIR/NNN_<layer>.h5: the row as one conv, a depthwise 'DP' row as a grouped "
                    "conv) and DIR/manifest.json. Replay a row with: run_sim.py replay DIR/NNN_<layer>.h5 "
                    "--arch DIR/arch.yaml --mode ann --map spec. See docs/peers.md, \"SCALE-Sim\".")
    p.add_argument("config", metavar="CONFIG.cfg", help="SCALE-Sim config file")
    p.add_argument("topology", metavar="TOPOLOGY.csv", help="SCALE-Sim conv topology file")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (created if its parent exists; files in it are replaced)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.arch.scalesim import import_scalesim
    from sim.report.output import Outputs

    with Outputs() as out:
        out_dir = out.directory("--out", args.out)
        res = import_scalesim(args.config, args.topology, out_dir, temp=out.temp)
    for text in res["warnings"]:
        sys.stderr.write(f"warning: {text}\n")
    first = next(iter(res["traces"].values()))
    print(f"wrote {res['spec']}, {len(res['traces'])} trace{'s' * (len(res['traces']) != 1)} and "
          f"{res['manifest']}; replay each row with: run_sim.py replay {first} --arch {res['spec']} "
          "--mode ann --map spec")
    return 0
