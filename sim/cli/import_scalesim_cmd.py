"""``run_sim.py import-scalesim CONFIG.cfg TOPOLOGY.csv --out DIR``: a SCALE-Sim config as a
systolic_array arch spec and its conv topology as one synthetic dense trace, its rows chained
into a network wherever the geometry allows (a new trace, a segment, where it does not), so
the same case replays here in one step (docs/peers.md, "SCALE-Sim")."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import-scalesim", help="turn a SCALE-Sim config and conv topology into an arch spec and a trace",
        description="Read a SCALE-Sim 3 config (ArrayHeight, ArrayWidth, Ifmap/Filter/OfmapSramSzkB, Dataflow, "
                    "and Bandwidth in USER mode) and conv topology (one row per layer, its input already "
                    "padded), and write DIR/arch.yaml (a systolic_array spec), a dense synthetic trace of the "
                    "rows chained into one network (DIR/network.h5: each row a conv reading the previous row's "
                    "output, padded, after an inserted max-pool where the map shrinks; a 1x1 row on a 1x1 map a "
                    "flatten and a linear layer; a depthwise 'DP' row a grouped conv) and DIR/manifest.json. A "
                    "row that cannot read the previous one (or whose output SCALE-Sim rounds up) starts a new "
                    "segment, a trace of its own (DIR/NNN_<first row>.h5). The replay commands are printed: "
                    "run_sim.py replay TRACE --arch DIR/arch.yaml --mode ann --map spec. "
                    "See docs/peers.md, \"SCALE-Sim\".")
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
    n = len(res["traces"])
    if n == 1:
        print(f"wrote {res['spec']}, {res['traces'][0]} (every row, one segment) and {res['manifest']}; "
              f"replay with:\n  {res['replay'][0]}")
    else:
        print(f"wrote {res['spec']}, {n} traces (segments: where a row cannot read the previous row's output, "
              f"a new one starts) and {res['manifest']}; replay each with:")
        for cmd in res["replay"]:
            print(f"  {cmd}")
    return 0
