"""hubbub on trio, asyncio+uvloop and asyncio, alternated run by run: one scenario, many short rounds.

Run: ``.venv/bin/python bench/loops.py --scenario fanout --rounds 10`` (after ``bash bench/run.sh
--quick`` once, which installs bench/node_modules). Each round runs the scenario once per loop, in
the order given, each on a fresh worker, so the machine's drift falls on every loop alike; only
hubbub runs (no SocketCluster), which keeps a round short enough for ten or more of them. Prints
each run's figures, then the median per loop and its ratio to the first loop's.
``--target hubbub2`` runs the cross-worker set-up (two workers and their own redis-server),
``--target hubbub-asgi`` a worker behind an ASGI server (bench/asgi_target.py: hypercorn on trio,
uvicorn on asyncio and uvloop).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as suite  # bench/run.py: targets, load generator, figures

#: The figures printed per scenario (keys of a load generator result).
FIGURES = {
    "fanout": ["server_cpu_us_per_delivery", "deliveries_per_s", "latency_us.p50", "latency_us.p99"],
    "paced": ["server_cpu_us_per_delivery", "latency_us.p50", "latency_us.p99"],
    "channels": ["server_cpu_us_per_delivery", "deliveries_per_s", "latency_us.p99"],
    "churn": ["server_cpu_us_per_cycle", "cycles_per_s", "latency_us.p99"],
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=sorted(FIGURES), default="fanout")
    parser.add_argument(
        "--loops", default="trio,uvloop,asyncio", help="comma-separated, the first is the base"
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--target", choices=["hubbub", "hubbub2", "hubbub-asgi"], default="hubbub")
    parser.add_argument("--quick", action="store_true", help="the suite's --quick sizes")
    parser.add_argument("--run-timeout", type=float, default=120)
    args = parser.parse_args()
    loops = [name.strip() for name in args.loops.split(",") if name.strip()]
    unknown = [name for name in loops if name not in suite.LOOP_FLAGS]
    if unknown:
        parser.error(f"unknown loop(s) {unknown}: use {', '.join(sorted(suite.LOOP_FLAGS))}")
    suite.raise_nofile()
    sizes = suite.SIZES["quick" if args.quick else "full"]
    keys = FIGURES[args.scenario]
    values: dict[str, dict[str, list[float]]] = {loop: {key: [] for key in keys} for loop in loops}
    for round_index in range(args.rounds):
        for loop in loops:
            options = argparse.Namespace(loop=loop, run_timeout=args.run_timeout, hubbub_ref=None)
            result = suite.one_run(args.scenario, args.scenario, args.target, 2, sizes, options)
            figures = {key: suite.pick(result, key) for key in keys}
            for key, value in figures.items():
                if value is not None:
                    values[loop][key].append(float(value))
            shown = ", ".join(f"{key} {value:,.3f}" for key, value in figures.items() if value is not None)
            print(f"round {round_index + 1} {loop}: {shown}", flush=True)
    print(f"\nmedians of {args.rounds} rounds ({args.scenario}, {args.target}); ratio to {loops[0]}:")
    for key in keys:
        base = statistics.median(values[loops[0]][key]) if values[loops[0]][key] else None
        cells = []
        for loop in loops:
            if not values[loop][key]:
                cells.append(f"{loop} -")
                continue
            middle = statistics.median(values[loop][key])
            ratio = f" ({middle / base:.2f}x)" if base else ""
            cells.append(f"{loop} {middle:,.3f}{ratio}")
        print(f"  {key}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
