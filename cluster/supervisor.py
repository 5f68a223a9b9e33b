"""``hubbub run --workers N``: one supervisor process and N worker processes sharing one socket.

The supervisor binds the listening socket once (and, with ``--metrics-port``, one status socket
per worker slot) and starts each worker as ``python -c ...worker_main()`` with those file
descriptors inherited (``pass_fds``) plus one end of a socketpair, its *control socket*. Over it
the supervisor sends the worker's :class:`WorkerSpec` (pickled: the :class:`Settings`, the slot
number, the descriptor numbers, ``sys.path``) and the worker answers ``R`` once it accepts
connections. Every worker runs the same trio server as a single-process ``hubbub run``; the kernel
hands each new connection to one of the workers waiting on the shared socket.

* The listening line is printed once, when every worker has reported ready.
* A worker that exits is logged with its slot, pid and cause (exit code or signal name) and
  started again after a backoff: 0.25 s, doubling for each exit of that slot within 30 s of its
  start, at most 10 s. Its clients reconnect (close 1006) and land on a live worker.
* SIGTERM or SIGINT drains: each worker gets SIGTERM, stops accepting, closes its sockets with 4011
  (clients reconnect elsewhere) and waits up to ``drain_timeout`` for them; the supervisor waits
  for the workers (killing any still there ``drain_timeout + 5`` s later) and exits 0.
* A worker whose control socket reaches EOF (the supervisor died) drains and exits by itself.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import signal
import socket as stdsocket
import struct
import subprocess
import sys
from dataclasses import dataclass, field, replace
from functools import partial

import trio

from ._logging import configure_logging
from ._loop import current
from ._runner import (
    api_url,
    freeze_startup_objects,
    listening_url,
    load_app,
    run_reporting,
    serve_until_signalled,
    status_url,
)
from ._transport.listen import bind_listener
from .settings import Settings

__all__ = ["WorkerSpec", "run_cluster", "worker_main"]

log = logging.getLogger("hubbub.supervisor")

RESTART_INITIAL = 0.25
RESTART_MAX = 10.0
#: A worker that ran at least this long before exiting restarts after the initial delay again.
RESTART_RESET_AFTER = 30.0
#: Extra time the supervisor gives draining workers beyond ``drain_timeout`` before SIGKILL.
DRAIN_GRACE = 5.0
#: Startup gives up when a worker fails this many times in a row before the cluster was ever ready.
STARTUP_ATTEMPTS = 3

#: Why a cluster on a Redis broker refuses to start without a key (one line on stderr).
NEEDS_AUTH_KEY = (
    "hubbub: a Redis broker with --workers needs an auth key: set --auth-key or HUBBUB_AUTH_KEY "
    "(the same on every host), else a token signed by one worker is refused by the others"
)

_WORKER_CODE = "from hubbub.cluster.supervisor import worker_main; worker_main()"
_READY = b"R"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs, sent to it over its control socket."""

    index: int
    settings: Settings
    listener_fd: int
    status_fd: int | None
    sys_path: list[str]
    #: The server API's listener (``api_port``), shared by every worker like the main one.
    api_fd: int | None = None


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


@dataclass(eq=False)
class _Slot:
    index: int
    status: stdsocket.socket | None
    process: trio.Process | None = None
    pid: int | None = None
    ready: bool = False
    started_at: float = 0.0
    failures: int = 0
    exited: trio.Event = field(default_factory=trio.Event)


class Supervisor:
    """Starts, watches, restarts and drains the workers of one ``hubbub run --workers N``."""

    def __init__(
        self,
        settings: Settings,
        listener: stdsocket.socket,
        statuses: list[stdsocket.socket | None],
        api: stdsocket.socket | None = None,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.api = api
        self.slots = [_Slot(i, statuses[i]) for i in range(settings.workers)]
        self.draining = False
        self.exit_code = 0
        self._drain = trio.Event()
        self._ready_changed = trio.Event()
        self._announced = False

    async def run(self) -> int:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for slot in self.slots:
                    nursery.start_soon(self._keep_running, slot)
                nursery.start_soon(self._announce_when_ready)

                async def on_signal() -> None:
                    async for signum in signals:
                        log.info("%s: draining %d workers", signal.Signals(signum).name, len(self.slots))
                        break
                    self._drain.set()

                nursery.start_soon(on_signal)
                if self.settings.server.tls_cert is not None:
                    nursery.start_soon(self._forward_sighup)
                await self._drain.wait()
                await self._stop_workers()
                nursery.cancel_scope.cancel()
        return self.exit_code

    async def _forward_sighup(self) -> None:
        """SIGHUP reloads the TLS certificate: every worker is told to load it again."""
        with trio.open_signal_receiver(signal.SIGHUP) as hangups:
            async for _ in hangups:
                for slot in self.slots:
                    if slot.process is not None and slot.process.returncode is None:
                        slot.process.send_signal(signal.SIGHUP)

    async def _stop_workers(self) -> None:
        self.draining = True
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                slot.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(self.settings.drain_timeout + DRAIN_GRACE):
            for slot in self.slots:
                if slot.process is not None:
                    await slot.process.wait()
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                log.warning("worker %d (pid %s) did not drain in time; killing it", slot.index, slot.pid)
                slot.process.kill()
                await slot.process.wait()

    async def _announce_when_ready(self) -> None:
        while not all(slot.ready for slot in self.slots):
            await self._ready_changed.wait()
            self._ready_changed = trio.Event()
        self._announced = True
        for slot in self.slots:
            if slot.status is not None:
                print(f"hubbub worker {slot.index} metrics on {status_url(slot.status)}", flush=True)
        if self.api is not None:
            print(f"hubbub api on {api_url(self.api)}", flush=True)
        server = self.settings.server
        url = listening_url(self.listener, server.path, tls=server.tls_cert is not None)
        print(f"hubbub listening on {url}", flush=True)

    async def _keep_running(self, slot: _Slot) -> None:
        while not self.draining:
            returncode, was_ready = await self._run_once(slot)
            if self._drain.is_set():
                return
            lived = trio.current_time() - slot.started_at
            if lived >= RESTART_RESET_AFTER:
                slot.failures = 0
            delay = min(RESTART_MAX, RESTART_INITIAL * 2**slot.failures)
            slot.failures += 1
            log.warning(
                "worker %d (pid %s) %s after %.1fs; restarting in %.2fs",
                slot.index,
                slot.pid,
                describe_exit(returncode),
                lived,
                delay,
            )
            if not self._announced and not was_ready and slot.failures >= STARTUP_ATTEMPTS:
                log.error("worker %d failed %d times while starting; giving up", slot.index, slot.failures)
                self.exit_code = 1
                self._drain.set()
                return
            with trio.move_on_after(delay):
                await self._drain.wait()

    async def _run_once(self, slot: _Slot) -> tuple[int, bool]:
        """Start the worker of ``slot`` and wait for it to exit: its return code, and if it was ready."""
        ours, theirs = stdsocket.socketpair()
        try:
            spec = WorkerSpec(
                index=slot.index,
                settings=self.settings,
                listener_fd=self.listener.fileno(),
                status_fd=slot.status.fileno() if slot.status is not None else None,
                sys_path=list(sys.path),
                api_fd=self.api.fileno() if self.api is not None else None,
            )
            fds = [self.listener.fileno(), theirs.fileno()]
            fds += [sock.fileno() for sock in (slot.status, self.api) if sock is not None]
            payload = pickle.dumps(spec)
            ours.sendall(struct.pack("!I", len(payload)) + payload)
            process = await trio.lowlevel.open_process(
                [sys.executable, "-c", _WORKER_CODE, str(theirs.fileno())],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            theirs.close()
            raise
        theirs.close()
        slot.process, slot.pid, slot.ready = process, process.pid, False
        slot.started_at = trio.current_time()
        log.info("worker %d started (pid %d)", slot.index, process.pid)
        control = trio.socket.from_stdlib_socket(ours)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_ready, slot, control)
                returncode = await process.wait()
                nursery.cancel_scope.cancel()
        finally:
            control.close()
        was_ready, slot.ready = slot.ready, False
        return returncode, was_ready

    async def _watch_ready(self, slot: _Slot, control: trio.socket.SocketType) -> None:
        data = await control.recv(16)
        if data.startswith(_READY):
            slot.ready = True
            log.info("worker %d ready (pid %s)", slot.index, slot.pid)
            self._ready_changed.set()


def run_cluster(settings: Settings) -> int:
    """Bind, start ``settings.workers`` workers, supervise them until signalled; the exit code."""
    config = settings.server
    if settings.broker.split(":", 1)[0].lower() == "memory":
        log.warning(
            "%d workers with the memory:// broker: each worker only reaches its own clients; "
            "use a Redis broker URL so that channels span workers",
            settings.workers,
        )
    else:
        from hubbub.broker import parse_redis_url

        try:
            parse_redis_url(settings.broker)
        except ValueError as error:
            print(f"hubbub: bad broker URL: {error}", file=sys.stderr)
            return 2
        if config.auth_key is None:
            print(NEEDS_AUTH_KEY, file=sys.stderr)
            return 2
    if config.auth_key is None:
        config = replace(config, auth_key=secrets.token_urlsafe(32))
        settings = replace(settings, server=config)
        log.warning(
            "no auth_key: one random key made for the %d workers of this supervisor (tokens do not "
            "survive its restart; set --auth-key or HUBBUB_AUTH_KEY to keep them)",
            settings.workers,
        )
    opened: list[stdsocket.socket] = []
    try:
        try:
            listener = bind_listener(config.host, config.port)
            opened.append(listener)
            statuses: list[stdsocket.socket | None] = []
            for i in range(settings.workers):
                if settings.metrics_port is None:
                    statuses.append(None)
                    continue
                port = settings.metrics_port + i if settings.metrics_port else 0
                status = bind_listener(config.host, port)
                opened.append(status)
                statuses.append(status)
            api = bind_listener(config.host, settings.api_port) if settings.api_port is not None else None
            if api is not None:
                opened.append(api)
        except OSError as error:
            print(f"hubbub: cannot listen on {config.host}: {error.strerror}", file=sys.stderr)
            return 2
        for sock in opened:
            os.set_inheritable(sock.fileno(), True)
        return trio.run(Supervisor(settings, listener, statuses, api).run)
    finally:
        for sock in opened:
            sock.close()


# -- the worker process ----------------------------------------------------------------------


def _receive_spec(control: stdsocket.socket) -> WorkerSpec:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = control.recv(n - len(data))
            if not chunk:
                raise EOFError("the supervisor closed the control socket")
            data += chunk
        return data

    (size,) = struct.unpack("!I", exactly(4))
    spec = pickle.loads(exactly(size))
    assert isinstance(spec, WorkerSpec)
    return spec


async def _until_closed(control: stdsocket.socket) -> None:
    """Return when the supervisor's end of the control socket closes (the supervisor is gone)."""
    control.setblocking(False)
    while True:
        await current().wait_readable(control)
        try:
            if not control.recv(64):
                log.warning("the supervisor is gone; draining")
                return
        except BlockingIOError:
            continue
        except OSError:
            return


def worker_main() -> None:
    """Entry point of a worker process (``argv[1]`` is the control socket's descriptor)."""
    control = stdsocket.socket(fileno=int(sys.argv[1]))
    spec = _receive_spec(control)
    for entry in reversed(spec.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    settings = spec.settings
    configure_logging(settings.log_level, settings.log_format, worker=spec.index)
    app = load_app(settings.app)
    listener = stdsocket.socket(fileno=spec.listener_fd)
    listener.setblocking(False)
    status, api = (
        stdsocket.socket(fileno=fd) if fd is not None else None for fd in (spec.status_fd, spec.api_fd)
    )
    for sock in (status, api):
        if sock is not None:
            sock.setblocking(False)

    def announce(url: str) -> None:
        del url
        control.sendall(_READY)

    freeze_startup_objects()
    code = run_reporting(
        partial(
            serve_until_signalled,
            app,
            settings.server,
            listener,
            settings.broker,
            broker_prefix=settings.broker_prefix,
            broker_connect_timeout=settings.broker_connect_timeout,
            worker_id=spec.index,
            drain_timeout=settings.drain_timeout,
            status_listener=status,
            api_listener=api,
            announce=announce,
            stop=partial(_until_closed, control),
        ),
        settings.server.loop,
        use_uvloop=settings.uvloop,
    )
    sys.exit(code)
