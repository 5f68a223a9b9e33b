"""What TLS costs: fan-out and churn on one hubbub worker over ``wss://`` against plain ``ws://``.

Run: ``.venv/bin/python bench/tls.py`` (``--quick`` for small sizes; needs bench/node_modules:
``cd bench && npm ci``). Certificates are made with ``trustme``; the load generator (bench/loadgen.js)
trusts their CA through ``NODE_EXTRA_CA_CERTS``. Rounds alternate plain and TLS; the table shows the
medians, and the result goes to bench/results/tls-<time>.json. The figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench

MODES = ("plain", "tls")
METRICS = {
    "fanout": [("deliveries_per_s", "deliveries/s"), ("server_cpu_us_per_delivery", "server us/delivery")],
    "churn": [("cycles_per_s", "cycles/s"), ("server_cpu_us_per_cycle", "server us/cycle")],
}


def start(mode: str, args: argparse.Namespace, tls_args: list[str]) -> bench.Target:
    """One hubbub worker, plain or with ``tls_args``; returns once it listens."""
    target = bench.Target(f"hubbub-{mode}")
    command = bench.hubbub_command(args, tls_args if mode == "tls" else [])
    bench.launch(target, command)
    target.pids()
    return target


def one(
    mode: str, scenario: str, sizes: dict[str, Any], args: argparse.Namespace, tls: list[str]
) -> dict[str, Any]:
    target = start(mode, args, tls)
    try:
        cfg = {"scenario": scenario, "url": target.url, "procs": args.procs, **sizes[scenario]}
        cfg["serverPids"] = target.pids()
        result = bench.run_loadgen(cfg, timeout=args.run_timeout)
    finally:
        bench.stop_target(target)
    result["mode"] = mode
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes (default 1)")
    parser.add_argument("--run-timeout", type=float, default=120, help="seconds per run")
    parser.add_argument(
        "--loop", choices=sorted(bench.LOOP_FLAGS), default="trio", help="hubbub's event loop (default trio)"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = bench.SIZES["quick" if args.quick else "full"]
    bench.raise_nofile()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(f"{tmp}/server.pem")
        ca.cert_pem.write_to_path(f"{tmp}/ca.pem")
        os.environ["NODE_EXTRA_CA_CERTS"] = f"{tmp}/ca.pem"  # the load generator inherits it
        tls = ["--tls-cert", f"{tmp}/server.pem", "--tls-key", f"{tmp}/server.pem"]
        for round_ in range(rounds):
            for scenario in METRICS:
                for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
                    result = one(mode, scenario, sizes, args, tls)
                    bench.log(f"round {round_ + 1} {scenario} {mode}: {bench.summary_line(result)}")
                    runs.append(result)
    table = []
    for scenario, metrics in METRICS.items():
        for key, label in metrics:
            medians = {
                mode: statistics.median(
                    r[key] for r in runs if r["scenario"] == scenario and r["mode"] == mode
                )
                for mode in MODES
            }
            table.append(
                {
                    "scenario": scenario,
                    "metric": label,
                    **medians,
                    "tls/plain": medians["tls"] / medians["plain"],
                }
            )
    print("\n| scenario | metric | plain | TLS | TLS / plain |\n|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['scenario']} | {row['metric']} | {row['plain']:.1f} | {row['tls']:.1f} | {row['tls/plain']:.2f} |"
        )
    bench.RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = bench.RESULTS / f"tls-{stamp}.json"
    out.write_text(json.dumps({"sizes": sizes, "rounds": rounds, "table": table, "runs": runs}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
