"""Startup and shutdown hooks run in a real worker process: startup before it accepts, shutdown after the drain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import start_process  # noqa: E402

from hubbub.client import connect  # noqa: E402

APP = """
from pathlib import Path
from hubbub.cluster import App

app = App()
journal = Path(__file__).with_name("journal.txt")


def note(line):
    with journal.open("a") as f:
        f.write(line + "\\n")


@app.on_startup
async def first():
    note("startup 1")


@app.on_startup
async def second():
    note("startup 2")
    await app.publish("boot", "published from a startup hook")


@app.on_disconnection
async def gone(socket, code, reason):
    note(f"disconnected {code}")


@app.on_shutdown
async def failing():
    note("shutdown 1")
    raise RuntimeError("a broken shutdown hook")


@app.on_shutdown
async def last():
    note("shutdown 2")
"""


def test_hooks_run_in_order_around_the_worker_life(tmp_path: Path) -> None:
    (tmp_path / "lifeapp.py").write_text(APP)
    journal = tmp_path / "journal.txt"
    server = start_process(
        [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--app", "lifeapp:app"], cwd=tmp_path
    )
    try:
        # Listening is announced after the startup hooks have run.
        assert journal.read_text().splitlines() == ["startup 1", "startup 2"]

        async def connected_then_stopped() -> None:
            async with connect(server.url, auto_reconnect=False):
                with trio.fail_after(10):
                    await trio.to_thread.run_sync(server.stop)

        trio.run(connected_then_stopped)
    finally:
        server.stop()
    assert server.proc.returncode == 0
    # The socket was drained (4011); a failing shutdown hook does not stop the next. (The
    # disconnection hook is a task of its own: its line may come before or after the shutdown's.)
    lines = journal.read_text().splitlines()
    assert lines[:2] == ["startup 1", "startup 2"]
    assert [line for line in lines if line.startswith("shutdown")] == ["shutdown 1", "shutdown 2"]
    assert "disconnected 4011" in lines and len(lines) == 5
    assert any("a broken shutdown hook" in line for line in server.lines)


def test_a_failing_startup_hook_stops_the_worker_before_it_listens(tmp_path: Path) -> None:
    (tmp_path / "badstart.py").write_text(
        "from hubbub.cluster import App\napp = App()\n\n@app.on_startup\n"
        "async def boom():\n    raise RuntimeError('database unreachable')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--app", "badstart:app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "database unreachable" in done.stderr
    assert "listening on" not in done.stdout
