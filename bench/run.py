"""hubbub against socketcluster-server@20: the benchmark suite of issue 5.

Run: ``bash bench/run.sh`` (or ``.venv/bin/python bench/run.py``); ``--quick`` for a small smoke run.

Each run starts its target fresh (hubbub with one worker; hubbub with two workers and its own
redis-server; socketcluster-server@20 in one Node process, bench/sc_target.js), drives it with the
Node load generator (bench/loadgen.js, raw ``ws`` clients split across K processes), stops it, and
records deliveries/s, latency percentiles, lost and duplicated messages, server CPU from /proc
(summed over the server's processes, Redis included), the generator's own CPU and server RSS per
connection. Rounds alternate the targets; the table shows medians over the rounds and the ratios
hubbub/SocketCluster against the targets the issue sets. Results go to bench/results/ as JSON, with
PNG plots of throughput and latency.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
#: What bench/requirements.txt installs, by import name.
BENCH_MODULES = ("matplotlib", "wsproto", "h11")
ROOT = BENCH.parent
RESULTS = BENCH / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PING_INTERVAL_S = 4  # both servers ping every 4 s (so idle connections get pinged while held)
PING_TIMEOUT_S = 20
OUTBOUND_LIMIT = 64 * 2**20  # socketcluster-server has no outbound limit; hubbub's default is 4 MiB

SC_NAME = "sc"
TARGETS = {
    "hubbub": "hubbub, 1 worker",
    "hubbub2": "hubbub, 2 workers + Redis",
    "hubbub-asgi": "hubbub through an ASGI server (AsgiEndpoint)",
    SC_NAME: "socketcluster-server@20",
}

# Scenario sizes. "full" is what issue 5 asks for; "quick" is a smoke run for development.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "fanout": {"subscribers": 1000, "messages": 2000, "window": 100, "publishers": 1},
        "paced": {"subscribers": 1000, "messages": 120, "rate": 20, "publishers": 1},
        "channels": {"subscribers": 1000, "nch": 1000, "messages": 20000, "window": 100, "publishers": 10},
        "idle": {"levels": [5000, 20000], "holdS": 5},
        "churn": {"durationS": 10, "concurrency": 50},
    },
    "quick": {
        "fanout": {"subscribers": 200, "messages": 300, "window": 100, "publishers": 1},
        "paced": {"subscribers": 200, "messages": 30, "rate": 20, "publishers": 1},
        "channels": {"subscribers": 200, "nch": 200, "messages": 2000, "window": 100, "publishers": 10},
        "idle": {"levels": [500, 2000], "holdS": 1},
        "churn": {"durationS": 2, "concurrency": 20},
    },
}
# Which targets run which scenario. "xworker" is the fan-out on the two-worker cluster, compared
# with single-process SocketCluster's fan-out of the same round; "gencheck" repeats hubbub's
# fan-out with another number of generator processes.
PLAN: list[tuple[str, str, list[str]]] = [
    ("fanout", "fanout", ["hubbub", SC_NAME]),
    ("xworker", "fanout", ["hubbub2"]),
    ("gencheck", "fanout", ["hubbub"]),
    ("paced", "paced", ["hubbub", SC_NAME]),
    ("channels", "channels", ["hubbub", SC_NAME]),
    ("idle", "idle", ["hubbub", SC_NAME]),
    ("churn", "churn", ["hubbub", SC_NAME]),
]


def log(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------------------------
# setup


def setup(skip: bool) -> None:
    """npm ci in bench/ and the bench-only Python requirements (bench/requirements.txt), when missing."""
    if shutil.which("node") is None:
        sys.exit("bench: node is needed (Node.js >= 18)")
    lock = (BENCH / "package-lock.json").read_bytes()
    stamp = BENCH / "node_modules" / ".bench-installed"
    digest = hashlib.sha256(lock).hexdigest()
    if not skip and (not stamp.exists() or stamp.read_text() != digest):
        log("bench: npm ci in bench/")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH, check=True)
        stamp.write_text(digest)
    if skip or all(importlib.util.find_spec(name) is not None for name in BENCH_MODULES):
        return
    log("bench: pip install -r bench/requirements.txt")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(BENCH / "requirements.txt"),
        ],
        check=True,
    )


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """pid and all its descendants, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "loadavg_at_start": [round(x, 2) for x in load],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }


# ----------------------------------------------------------------------------------------------
# targets


@dataclass
class Target:
    name: str
    proc: subprocess.Popen[str] | None = None
    redis: subprocess.Popen[str] | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)
    known_pids: set[int] = field(default_factory=set)

    def pids(self) -> list[int]:
        """The server's processes right now: the target's tree, plus redis-server."""
        pids: list[int] = []
        if self.proc is not None:
            pids += descendants(self.proc.pid)
        if self.redis is not None:
            pids += descendants(self.redis.pid)
        self.known_pids.update(pids)
        return pids


def hubbub_command(args: argparse.Namespace, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hubbub.cluster",
        "run",
        "--port",
        "0",
        "--codec",
        "json",
        "--ping-interval",
        str(PING_INTERVAL_S),
        "--ping-timeout",
        str(PING_TIMEOUT_S),
        "--outbound-limit",
        str(OUTBOUND_LIMIT),
        *LOOP_FLAGS[args.loop],
        *extra,
    ]


#: hubbub's event loop as a benchmark target (``--loop``): the worker flags of each.
LOOP_FLAGS: dict[str, list[str]] = {
    "trio": [],
    "asyncio": ["--loop", "asyncio", "--uvloop", "false"],
    "uvloop": ["--loop", "asyncio", "--uvloop", "true"],
}
LOOP_NAMES = {"trio": "trio", "asyncio": "asyncio", "uvloop": "asyncio+uvloop"}
#: The ``hubbub-asgi`` target per ``--loop``: hypercorn on trio, uvicorn on asyncio or uvloop.
ASGI_SERVERS = {
    "trio": lambda port: ["-m", "hypercorn", "-k", "trio", "-b", f"127.0.0.1:{port}", "asgi_target:endpoint"],
    "asyncio": lambda port: [
        *("-m", "uvicorn", "asgi_target:endpoint", "--port", str(port), "--loop", "asyncio"),
        *("--log-level", "warning"),
    ],
    "uvloop": lambda port: [
        *("-m", "uvicorn", "asgi_target:endpoint", "--port", str(port), "--loop", "uvloop"),
        *("--log-level", "warning"),
    ],
}


def loops_markdown(docs: list[dict[str, Any]]) -> str:
    """Result files of runs on different ``--loop`` targets as one table, side by side with SocketCluster.

    Several files of one loop (rounds run alternately with the other loops) are pooled: the
    table shows the medians over all their rounds.
    """
    pooled: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        pooled.setdefault(doc["meta"].get("hubbub_loop", "trio"), []).append(doc)
    names = [LOOP_NAMES[loop] for loop in pooled]
    docs = [
        group[0] if len(group) == 1 else {"table": build_table([r for d in group for r in d["runs"]])}
        for group in pooled.values()
    ]
    lines = [
        "| | "
        + " | ".join(names)
        + " | SocketCluster | "
        + " | ".join(f"{n} / trio" for n in names[1:])
        + " |",
        "|---|" + "---:|" * (2 * len(names)),
    ]
    tables = [{row["row"]: row for row in doc["table"]} for doc in docs]
    for name, first in tables[0].items():
        digits = 2 if first["unit"] in ("us", "ms", "KiB", "") else 0
        unit = {"us": " (µs)", "ms": " (ms)", "KiB": " (KiB)"}.get(first["unit"], "")
        values = [table.get(name, {}).get("hubbub") for table in tables]
        scs = [table.get(name, {}).get("sc") for table in tables if table.get(name, {}).get("sc") is not None]
        sc = statistics.median(scs) if scs else None
        ratios = ["-" if v is None or not values[0] else f"{v / values[0]:.2f}" for v in values[1:]]
        cells = [fmt(v, digits) for v in values] + [fmt(sc, digits)] + ratios
        lines.append(f"| {name}{unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def workers_supported() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "hubbub.cluster", "run", "--help"],
        capture_output=True,
        text=True,
        env=hubbub_env(),
    )
    return "--workers" in out.stdout


_HUBBUB_PYTHONPATH: str | None = None


def hubbub_env() -> dict[str, str]:
    env = dict(os.environ)
    if _HUBBUB_PYTHONPATH:
        env["PYTHONPATH"] = _HUBBUB_PYTHONPATH + os.pathsep + env.get("PYTHONPATH", "")
    return env


def export_ref(ref: str, dest: Path) -> str:
    """Lay out the hubbub package of git ``ref`` under dest (for benchmarking another commit)."""
    raw = dest / "raw"
    raw.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref, "core", "cluster", "broker", "client"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(raw)], input=archive, check=True)
    pkg = dest / "hubbub"
    shutil.copytree(raw / "core", pkg)
    for sub in ("cluster", "broker", "client"):
        shutil.copytree(raw / sub, pkg / sub)
    return str(dest)


def start_redis() -> subprocess.Popen[str]:
    for _ in range(5):
        port = free_port()
        if port == 6379:
            continue
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    proc.port = port  # type: ignore[attr-defined]
                    return proc
            time.sleep(0.05)
        stop_process(proc)
    raise RuntimeError("could not start redis-server")


def start_target(name: str, args: argparse.Namespace) -> Target:
    target = Target(name)
    env = None
    if name == "hubbub":
        cmd = hubbub_command(args, [])
        env = hubbub_env()
    elif name == "hubbub2":
        target.redis = start_redis()
        broker = f"redis://127.0.0.1:{target.redis.port}/0"  # type: ignore[attr-defined]
        # A Redis cluster needs one auth key for all its workers (the supervisor refuses to start without).
        cmd = hubbub_command(args, ["--workers", "2", "--broker", broker, "--auth-key", "bench-shared-key"])
        env = hubbub_env()
    elif name == "hubbub-asgi":
        port = free_port()
        cmd = [sys.executable, *ASGI_SERVERS[args.loop](port)]
        env = hubbub_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), env.get("PYTHONPATH", "")]))
        env["HUBBUB_BENCH_PORT"] = str(port)
    else:
        cmd = [
            "node",
            str(BENCH / "sc_target.js"),
            "--port",
            "0",
            "--ping-interval",
            str(PING_INTERVAL_S * 1000),
            "--ping-timeout",
            str(PING_TIMEOUT_S * 1000),
        ]
    launch(target, cmd, env)
    time.sleep(0.5 if name != "hubbub2" else 1.5)  # let workers finish starting
    target.pids()
    return target


def launch(target: Target, cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Start ``target``'s server process with ``cmd``; return once it says where it listens."""
    target.proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    ready = threading.Event()

    def reader() -> None:
        assert target.proc is not None and target.proc.stdout is not None
        for line in target.proc.stdout:
            target.output.append(line.rstrip())
            if "listening on " in line and not target.url:  # ws:// or wss://
                target.url = line.split("listening on ", 1)[1].split()[0]
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    ready.wait(30)
    if not target.url:
        stop_target(target)
        raise RuntimeError(f"{target.name} did not start: " + " / ".join(target.output[-10:]))


def stop_process(proc: subprocess.Popen[str], pids: set[int] | None = None) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    # Children of ours that outlived their parent (known by PID only).
    for pid in pids or ():
        if pid == proc.pid:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stop_target(target: Target) -> None:
    if target.proc is not None:
        tree = set(descendants(target.proc.pid)) | target.known_pids
        if target.redis is not None:
            tree -= set(descendants(target.redis.pid))
        stop_process(target.proc, tree)
    if target.redis is not None:
        stop_process(target.redis)


# ----------------------------------------------------------------------------------------------
# runs


_run_counter = 0


def run_loadgen(cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    global _run_counter
    _run_counter += 1
    cfg = {**cfg, "srcNet": f"127.{1 + _run_counter % 250}.1", "clkTck": CLK_TCK, "hardLimitS": timeout}
    proc = subprocess.Popen(
        ["node", str(BENCH / "loadgen.js"), json.dumps(cfg)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=BENCH,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        proc.kill()  # its workers exit when their IPC channel closes
        proc.wait()
        raise RuntimeError("load generator timed out") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def one_run(
    label: str, scenario: str, target_name: str, procs: int, sizes: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    t0 = time.monotonic()
    target = start_target(target_name, args)
    try:
        cfg: dict[str, Any] = {"scenario": scenario, "url": target.url, "procs": procs, **sizes[scenario]}
        if scenario == "idle":
            cfg["procs"] = max(procs, math.ceil(max(cfg["levels"]) / 7000))
            cfg["settleMs"] = 1000
        cfg["serverPids"] = target.pids()
        result = run_loadgen(cfg, timeout=args.run_timeout)
    finally:
        stop_target(target)
    result["target"] = target_name
    result["label"] = label
    result["wall_s"] = time.monotonic() - t0
    return result


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def summary_line(r: dict[str, Any]) -> str:
    s = r["scenario"]
    if s == "idle":
        parts = [f"{lv['level']}: {lv['rss_bytes_per_conn'] / 1024:.1f} KiB/conn" for lv in r["levels"]]
        return f"{', '.join(parts)}; held {r['held']}, drops {r['drops']}"
    if s == "churn":
        return (
            f"{fmt(r['cycles_per_s'])} cycles/s, server {fmt(r['server_cpu_us_per_cycle'])} us/cycle, "
            f"failed {r['failed']}"
        )
    lat = r["latency_us"] or {}
    spread = ""
    if len(r.get("server_fds_added") or {}) > 1:
        spread = f", connections per server process {sorted(r['server_fds_added'].values())}"
    return (
        f"{fmt(r['deliveries_per_s'])} deliveries/s, p50 {fmt((lat.get('p50') or 0) / 1000, 2)} ms "
        f"p99 {fmt((lat.get('p99') or 0) / 1000, 2)} ms, server {fmt(r['server_cpu_us_per_delivery'], 2)} "
        f"us/delivery, generator {fmt(r['gen_cpu_util'], 2)} cores, lost {r['lost']} dup {r['duplicated']}"
        f"{', DROPPED ' + str(r['drops']) + ' connections' if r.get('drops') else ''}{spread}"
    )


# ----------------------------------------------------------------------------------------------
# aggregation


def metric_values(runs: list[dict[str, Any]], key: str) -> list[float]:
    values = []
    for r in runs:
        v = pick(r, key)
        if v is not None:
            values.append(float(v))
    return values


def pick(r: dict[str, Any], key: str) -> Any:
    """Dotted access; 'levels[-1].x' style for idle levels."""
    cur: Any = r
    for part in key.split("."):
        if cur is None:
            return None
        if "[" in part:
            name, idx = part[:-1].split("[")
            cur = cur.get(name)
            cur = cur[int(idx)] if cur else None
        else:
            cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = metric_values(runs, key)
    return statistics.median(values) if values else None


# rows: (label, group, target, metric key, unit, scale, better) — better: "low" or "high"
ROWS: list[tuple[str, str, str, str, float, str]] = [
    ("fan-out: deliveries/s", "fanout", "deliveries_per_s", "/s", 1, "high"),
    ("fan-out: server CPU per delivery", "fanout", "server_cpu_us_per_delivery", "us", 1, "low"),
    ("fan-out: latency p50", "fanout", "latency_us.p50", "ms", 1e-3, "low"),
    ("fan-out: latency p99", "fanout", "latency_us.p99", "ms", 1e-3, "low"),
    ("fan-out: generator CPU (cores)", "fanout", "gen_cpu_util", "", 1, "low"),
    ("paced fan-out: latency p50", "paced", "latency_us.p50", "ms", 1e-3, "low"),
    ("paced fan-out: latency p99", "paced", "latency_us.p99", "ms", 1e-3, "low"),
    ("paced fan-out: latency p99.9", "paced", "latency_us.p999", "ms", 1e-3, "low"),
    ("paced fan-out: server CPU per delivery", "paced", "server_cpu_us_per_delivery", "us", 1, "low"),
    ("many channels: deliveries/s", "channels", "deliveries_per_s", "/s", 1, "high"),
    ("many channels: server CPU per delivery", "channels", "server_cpu_us_per_delivery", "us", 1, "low"),
    ("many channels: latency p99", "channels", "latency_us.p99", "ms", 1e-3, "low"),
    (
        "idle: RSS per connection (first level)",
        "idle",
        "levels[0].rss_bytes_per_conn",
        "KiB",
        1 / 1024,
        "low",
    ),
    (
        "idle: RSS per connection (second level)",
        "idle",
        "levels[1].rss_bytes_per_conn",
        "KiB",
        1 / 1024,
        "low",
    ),
    ("idle: connections held (second level)", "idle", "held", "", 1, "high"),
    ("idle: connects/s", "idle", "levels[1].connects_per_s", "/s", 1, "high"),
    ("churn: cycles/s", "churn", "cycles_per_s", "/s", 1, "high"),
    ("churn: server CPU per cycle", "churn", "server_cpu_us_per_cycle", "us", 1, "low"),
    ("churn: cycle latency p99", "churn", "latency_us.p99", "ms", 1e-3, "low"),
    ("cross-worker fan-out: deliveries/s", "xworker", "deliveries_per_s", "/s", 1, "high"),
    (
        "cross-worker fan-out: CPU per delivery (workers + Redis)",
        "xworker",
        "server_cpu_us_per_delivery",
        "us",
        1,
        "low",
    ),
    ("cross-worker fan-out: latency p99", "xworker", "latency_us.p99", "ms", 1e-3, "low"),
]

# The targets: (text, group, metric, hubbub label, op, bound)
# op "ratio<=": hubbub/SC <= bound; "ratio>=": >=; "abs<=": value <= bound.
GOALS: list[tuple[str, str, str, str, float]] = [
    (
        "Fan-out: server CPU per delivery <= 1/3 of SC",
        "fanout",
        "server_cpu_us_per_delivery",
        "ratio<=",
        1 / 3,
    ),
    ("Fan-out: deliveries/s >= 1.8x SC", "fanout", "deliveries_per_s", "ratio>=", 1.8),
    ("Paced fan-out: p99 latency <= 1/2 of SC", "paced", "latency_us.p99", "ratio<=", 0.5),
    (
        "Many channels: server CPU per delivery <= 1/2 of SC",
        "channels",
        "server_cpu_us_per_delivery",
        "ratio<=",
        0.5,
    ),
    ("Idle: <= 8 KiB RSS per subscribed connection", "idle", "levels[-1].rss_bytes_per_conn", "abs<=", 8192),
    ("Idle: every connection of the second level held, no drop", "idle", "held", "held", 0),
    ("Churn: server CPU per cycle <= SC's", "churn", "server_cpu_us_per_cycle", "ratio<=", 1.0),
    (
        "Cross-worker: CPU per delivery (2 workers + Redis) <= 1/2 of single-process SC",
        "xworker",
        "server_cpu_us_per_delivery",
        "ratio<=",
        0.5,
    ),
]


def hubbub_runs(runs: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    target = "hubbub2" if group == "xworker" else "hubbub"
    return [r for r in runs if r["label"] == group and r["target"] == target]


def sc_runs(runs: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    label = "fanout" if group == "xworker" else group
    return [r for r in runs if r["label"] == label and r["target"] == SC_NAME]


def build_table(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = []
    for text, group, key, unit, scale, better in ROWS:
        h = median(hubbub_runs(runs, group), key)
        s = median(sc_runs(runs, group), key)
        if h is None and s is None:
            continue
        ratio = h / s if h is not None and s else None
        table.append(
            {
                "row": text,
                "unit": unit,
                "hubbub": None if h is None else h * scale,
                "sc": None if s is None else s * scale,
                "ratio": ratio,
                "better": better,
                "rounds": f"{len(hubbub_runs(runs, group))}/{len(sc_runs(runs, group))}",
            }
        )
    return table


def check_goals(runs: list[dict[str, Any]], idle_levels: list[int]) -> list[dict[str, Any]]:
    out = []
    for text, group, key, op, bound in GOALS:
        hr = hubbub_runs(runs, group)
        h = median(hr, key)
        s = median(sc_runs(runs, group), key)
        status: str
        value: str
        if h is None:
            status, value = "not measured", "-"
        elif op == "abs<=":
            status = "met" if h <= bound else "missed"
            value = f"{h / 1024:.2f} KiB"
        elif op == "held":
            level = idle_levels[-1]
            drops = max(metric_values(hr, "drops") or [0])
            held_min = min(metric_values(hr, "held") or [0])
            ok = held_min >= level and drops == 0
            status = "met" if ok else "missed"
            value = f"{held_min:.0f}/{level} held, {drops:.0f} dropped"
        elif not s:
            status, value = "not measured", "-"
        else:
            ratio = h / s
            ok = ratio <= bound if op == "ratio<=" else ratio >= bound
            status = "met" if ok else "missed"
            value = f"{ratio:.2f}x"
        out.append({"goal": text, "value": value, "status": status})
    return out


def integrity(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("lost", "duplicated", "misrouted", "drops", "publish_errors", "connect_failed", "failed")
    totals: dict[str, dict[str, int]] = {}
    for r in runs:
        name = f"{r['label']}/{r['target']}"
        t = totals.setdefault(name, dict.fromkeys(keys, 0))
        for k in keys:
            v = r.get(k)
            if isinstance(v, int | float):
                t[k] += int(v)
        for lv in r.get("levels", []):
            t["connect_failed"] += int(lv["connect_failed"])
    return totals


def print_table(table: list[dict[str, Any]], goals: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    w = max(len(row["row"]) for row in table) + 2
    log("")
    log(
        f"Medians over {meta['rounds']} round(s) ({meta['mode']} sizes); ratio = hubbub / SocketCluster; "
        "runs = hubbub/SC runs behind each median"
    )
    log(f"{'':{w}}{'hubbub':>14}{'SocketCluster':>16}{'ratio':>9}{'runs':>8}")
    for row in table:
        digits = 2 if row["unit"] in ("us", "ms", "KiB", "") else 0
        unit = f" {row['unit']}" if row["unit"] not in ("/s", "") else ""
        h = fmt(row["hubbub"], digits)
        s = fmt(row["sc"], digits)
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        log(f"{row['row'] + unit:{w}}{h:>14}{s:>16}{ratio:>9}{row['rounds']:>8}")
    log("")
    log("Issue 5 targets:")
    for g in goals:
        log(f"  [{g['status']:^12}] {g['goal']}: {g['value']}")


def markdown(doc: dict[str, Any]) -> str:
    """The results as Markdown (the tables of docs/benchmarks.md)."""
    meta = doc["meta"]
    m = meta["machine"]
    lines = [
        f"Run {meta['started']} on commit {meta['git']}"
        + (f" (hubbub from {meta['hubbub_ref']})" if meta.get("hubbub_ref") else "")
        + f": {meta['mode']} sizes, {meta['rounds']} round(s), generator in {meta['procs']} processes, "
        f"{meta['elapsed_s']:.0f} s; {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, "
        f"load average {m['loadavg_at_start'][0]} at start, {meta.get('loadavg_at_end', ['?'])[0]} at end.",
        "",
        "| | hubbub | SocketCluster | hubbub / SC | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in doc["table"]:
        digits = 2 if row["unit"] in ("us", "ms", "KiB", "") else 0
        unit = {"us": " (µs)", "ms": " (ms)", "KiB": " (KiB)"}.get(row["unit"], "")
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['row']}{unit} | {fmt(row['hubbub'], digits)} | {fmt(row['sc'], digits)} | {ratio} "
            f"| {row.get('rounds', '')} |"
        )
    lines += ["", "| issue 5 target | measured | |", "|---|---|---|"]
    for g in doc["goals"]:
        lines.append(f"| {g['goal']} | {g['value']} | **{g['status']}** |")
    gen = doc.get("generator_check") or {}
    if gen:
        lines += [
            "",
            "| generator check (hubbub fan-out) | deliveries/s | server µs/delivery | generator cores |",
        ]
        lines.append("|---|---:|---:|---:|")
        for k, v in gen.items():
            lines.append(
                f"| {k.replace('procs=', '')} process(es), round(s) {v.get('rounds', '?')} | {fmt(v['deliveries_per_s'])} "
                f"| {fmt(v['server_cpu_us_per_delivery'], 2)} | {fmt(v['gen_cpu_util'], 2)} |"
            )
    bad = {k: {kk: vv for kk, vv in v.items() if vv} for k, v in doc["integrity"].items()}
    bad = {k: v for k, v in bad.items() if v}
    lines += [
        "",
        f"Integrity over all runs (lost, duplicated, misrouted, dropped, errors): {bad or 'all zero'}.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# plots


def hist_percentiles(hist: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(latency ms, percentile) points from a sparse log histogram (2 % buckets)."""
    total = sum(c for _, c in hist["sparse"])
    xs, ys, seen = [], [], 0.0
    for idx, count in hist["sparse"]:
        seen += count
        xs.append(min(1.02**idx, hist["max"]) / 1000)
        ys.append(100 * seen / total)
    return xs, ys


def plot(
    runs: list[dict[str, Any]], table: list[dict[str, Any]], stem: Path, img_dir: Path | None
) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("bench: matplotlib missing, no plots")
        return []
    colors = {"hubbub": "#2a7ab9", "hubbub2": "#7fb3dc", SC_NAME: "#d9822b"}
    written = []

    # Throughput: deliveries/s per scenario, churn cycles/s, CPU per delivery.
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    groups = [("fanout", "fan-out"), ("xworker", "cross-worker\nfan-out"), ("channels", "many channels")]
    for ax, key, ylabel, gs in (
        (axes[0], "deliveries_per_s", "deliveries per second", groups),
        (axes[1], "server_cpu_us_per_delivery", "server CPU µs per delivery", groups),
        (axes[2], "cycles_per_s", "churn cycles per second", [("churn", "churn")]),
    ):
        x = 0
        ticks, names = [], []
        for group, name in gs:
            start = x
            for target in ("hubbub", "hubbub2", SC_NAME):
                if (group == "xworker") != (target == "hubbub2") and target != SC_NAME:
                    continue
                # cross-worker is set against single-process SocketCluster's fan-out
                rs = hubbub_runs(runs, group) if target != SC_NAME else sc_runs(runs, group)
                vals = metric_values(rs, key)
                if not vals:
                    continue
                med = statistics.median(vals)
                ax.bar(
                    x,
                    med,
                    color=colors[target],
                    yerr=[[med - min(vals)], [max(vals) - med]],
                    capsize=3,
                    label=TARGETS[target],
                )
                x += 1
            ticks.append((start + x - 1) / 2)
            names.append(name)
            x += 0.8
        ax.set_xticks(ticks)
        ax.set_xticklabels(names)
        ax.set_ylabel(ylabel)
        if key != "cycles_per_s":
            ax.set_yscale("log")  # hubbub and SocketCluster differ by more than 10x here
        ax.grid(axis="y", alpha=0.3, which="both")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=False):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    path = stem.with_name(stem.name + "-throughput.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    # Latency: percentile curves (all rounds merged) for paced fan-out, fan-out, many channels.
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, group, title in (
        (axes[0], "paced", "paced fan-out (20 publishes/s)"),
        (axes[1], "fanout", "fan-out (100 publishes in flight)"),
        (axes[2], "channels", "many channels"),
    ):
        for target in ("hubbub", SC_NAME):
            rs = [r for r in runs if r["label"] == group and r["target"] == target and r.get("hist")]
            if not rs:
                continue
            merged: dict[int, float] = {}
            mx = 0.0
            for r in rs:
                for idx, c in r["hist"]["sparse"]:
                    merged[idx] = merged.get(idx, 0) + c
                mx = max(mx, r["hist"]["max"])
            xs, ys = hist_percentiles({"sparse": sorted(merged.items()), "max": mx})
            # x: percentile on a "nines" scale, y: latency
            nines = [-math.log10(max(1e-6, 1 - y / 100)) for y in ys]
            ax.plot(nines, xs, color=colors[target], label=TARGETS[target])
        ax.set_xticks([0, 1, 2, 3, 4])
        ax.set_xticklabels(["0", "90", "99", "99.9", "99.99"])
        ax.set_xlim(0, 4)
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency, ms (send to receipt)")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    path = stem.with_name(stem.name + "-latency.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    if img_dir is not None:
        img_dir.mkdir(parents=True, exist_ok=True)
        for p in written:
            dest = img_dir / ("benchmarks-" + p.name.rsplit("-", 1)[-1])
            shutil.copyfile(p, dest)
            log(f"bench: plot copied to {dest}")
    return written


# ----------------------------------------------------------------------------------------------
# main


def main() -> int:
    global _HUBBUB_PYTHONPATH
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (< 1 minute)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument(
        "--gencheck-procs",
        type=int,
        default=None,
        help="generator processes of the gencheck run (default 1, or 2 with --procs 1)",
    )
    parser.add_argument(
        "--gencheck-rounds", type=int, default=1, help="rounds that include the gencheck run (default 1)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated subset of: " + ",".join(p[0] for p in PLAN)
    )
    parser.add_argument("--hubbub-ref", default=None, help="benchmark hubbub as of this git ref")
    parser.add_argument(
        "--loop",
        choices=sorted(LOOP_FLAGS),
        default="trio",
        help="hubbub's workers on trio (default), asyncio (the standard loop) or uvloop (asyncio+uvloop)",
    )
    parser.add_argument(
        "--loops-report",
        type=Path,
        nargs="+",
        default=None,
        help=(
            "print result JSONs of runs with different --loop (trio first; several files of one loop "
            "are pooled) as one Markdown table and exit"
        ),
    )
    parser.add_argument("--img-dir", type=Path, default=None, help="also copy the plots here")
    parser.add_argument("--no-setup", action="store_true", help="skip npm ci / pip install")
    parser.add_argument("--run-timeout", type=float, default=120, help="seconds per run (default 120)")
    parser.add_argument(
        "--max-minutes", type=float, default=9.5, help="start no new run after this (default 9.5)"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="print a results JSON as Markdown (and redraw its plots with --img-dir) and exit",
    )
    args = parser.parse_args()
    if args.loops_report:
        print(loops_markdown([json.loads(path.read_text()) for path in args.loops_report]), end="")
        return 0
    if args.report:
        doc = json.loads(args.report.read_text())
        print(markdown(doc), end="")
        if args.img_dir:  # redraw the plots of that result file too
            plot(doc["runs"], doc["table"], args.report.with_suffix(""), args.img_dir)
        return 0
    mode = "quick" if args.quick else "full"
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = json.loads(json.dumps(SIZES[mode]))
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {p[0] for p in PLAN}
    if unknown:
        parser.error(f"unknown --only: {', '.join(sorted(unknown))}")

    setup(args.no_setup)
    hard = raise_nofile()
    # The server holds one descriptor per connection plus a few of its own.
    limit = hard - 64
    levels = sizes["idle"]["levels"]
    if levels[-1] > limit:
        log(f"bench: RLIMIT_NOFILE is {hard}: the idle scenario holds {limit} connections, not {levels[-1]}")
        levels[-1] = limit
    if args.hubbub_ref:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"hubbub-bench-{os.getpid()}"
        _HUBBUB_PYTHONPATH = export_ref(args.hubbub_ref, tmp)
        log(f"bench: hubbub from {args.hubbub_ref} ({_HUBBUB_PYTHONPATH})")

    plan = [p for p in PLAN if not only or p[0] in only]
    skipped: dict[str, str] = {}
    if any("hubbub2" in p[2] for p in plan):
        if shutil.which("redis-server") is None:
            skipped["xworker"] = "redis-server not found"
        elif not workers_supported():
            skipped["xworker"] = "this hubbub does not accept --workers yet (cluster/supervisor.py)"
    for label, why in skipped.items():
        log(f"bench: SKIPPING {label}: {why}")
    plan = [p for p in plan if p[0] not in skipped]

    meta = {
        "mode": mode,
        "rounds": rounds,
        "procs": args.procs,
        "sizes": sizes,
        "machine": machine_info(),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "hubbub_ref": args.hubbub_ref,
        "hubbub_loop": args.loop,
        "skipped": skipped,
        "settings": {
            "ping_interval_s": PING_INTERVAL_S,
            "ping_timeout_s": PING_TIMEOUT_S,
            "hubbub_outbound_limit": OUTBOUND_LIMIT,
        },
    }
    m = meta["machine"]
    log(
        f"bench: {mode}, {rounds} round(s), generator in {args.procs} process(es); "
        f"{m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, load {m['loadavg_at_start']}"
    )

    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.monotonic()
    total = sum(
        len(p[2]) * (min(rounds, args.gencheck_rounds) if p[0] == "gencheck" else rounds) for p in plan
    )
    n = 0
    stopped_early = False
    for rnd in range(rounds):
        for label, scenario, targets in plan:
            if label == "gencheck" and rnd >= args.gencheck_rounds:
                continue
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for target in order:
                n += 1
                if time.monotonic() - started > args.max_minutes * 60:
                    stopped_early = True
                    break
                procs = args.procs
                if label == "gencheck":
                    procs = args.gencheck_procs or (1 if args.procs != 1 else 2)
                log(
                    f"[{n}/{total}] round {rnd + 1}: {label} on {TARGETS[target]}"
                    f" (generator x{procs}, {time.monotonic() - started:.0f} s elapsed)"
                )
                try:
                    r = one_run(label, scenario, target, procs, sizes, args)
                except (RuntimeError, OSError) as error:
                    failures.append(f"{label}/{target} round {rnd + 1}: {error}")
                    log(f"    FAILED: {error}")
                    continue
                r["round"] = rnd + 1
                runs.append(r)
                log(f"    {summary_line(r)}  ({r['wall_s']:.1f} s)")

    table = build_table(runs)
    goals = check_goals(runs, levels)
    # Generator check: the same fan-out on hubbub with the other number of generator processes.
    gen = {}
    gen_rounds = {r["round"] for r in runs if r["label"] == "gencheck"}
    for label in ("fanout", "gencheck"):
        rs = [r for r in runs if r["label"] == label and r["target"] == "hubbub" and r["round"] in gen_rounds]
        if rs:
            gen[f"procs={rs[0]['procs']}"] = {
                "rounds": sorted(gen_rounds),
                "deliveries_per_s": median(rs, "deliveries_per_s"),
                "server_cpu_us_per_delivery": median(rs, "server_cpu_us_per_delivery"),
                "gen_cpu_util": median(rs, "gen_cpu_util"),
                "latency_p99_us": median(rs, "latency_us.p99"),
            }
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["stopped_early"] = stopped_early
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    stem = RESULTS / stamp
    doc = {
        "meta": meta,
        "table": table,
        "goals": goals,
        "generator_check": gen,
        "integrity": integrity(runs),
        "failures": failures,
        "runs": runs,
    }
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    stem.with_suffix(".md").write_text(markdown(doc))
    if table:
        print_table(table, goals, meta)
    if gen:
        log("")
        log("Generator check (hubbub fan-out, same round(s), medians):")
        for k, v in gen.items():
            log(
                f"  {k}: {fmt(v['deliveries_per_s'])} deliveries/s, server "
                f"{fmt(v['server_cpu_us_per_delivery'], 2)} us/delivery, generator "
                f"{fmt(v['gen_cpu_util'], 2)} cores"
            )
    bad = {k: {kk: vv for kk, vv in v.items() if vv} for k, v in doc["integrity"].items()}
    bad = {k: v for k, v in bad.items() if v}
    log("")
    log(f"Integrity (lost/duplicated/misrouted/drops/errors, summed over rounds): {bad or 'all zero'}")
    for f in failures:
        log(f"FAILED RUN: {f}")
    if skipped:
        for label, why in skipped.items():
            log(f"SKIPPED: {label}: {why}")
    if stopped_early:
        log(f"STOPPED EARLY: --max-minutes {args.max_minutes} reached")
    plots = plot(runs, table, stem, args.img_dir) if runs else []
    log(
        f"bench: results in {stem.with_suffix('.json')}"
        + (f", plots {', '.join(p.name for p in plots)}" if plots else "")
    )
    log(f"bench: done in {meta['elapsed_s']:.0f} s")
    if _HUBBUB_PYTHONPATH:
        shutil.rmtree(_HUBBUB_PYTHONPATH, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
