"""The docker-compose stack, tested without Docker (it cannot run here).

* ``docker-compose.yml`` has the shape the README promises: services ``redis``, ``hubbub`` and
  ``lb``, each with a health check; ``hubbub`` scales (no fixed host port, no container name);
  ``lb`` waits for healthy replicas and publishes the only host port.
* The ``Dockerfile`` is multi-stage (a slim final image with no build tools, a non-root user, the
  project installed from a wheel built in the builder stage), its command is the compose
  service's, and what its builder stage copies is enough to build that wheel.
* The ``hubbub`` service's command runs, with the service's environment, as two local processes
  (two replicas) against a local redis-server: only the Redis host and port, the listening port
  and the listening address (``0.0.0.0`` -> ``127.0.0.1``, to stay on loopback) are replaced, and
  ``HUBBUB_APP`` names the test app. The official client subscribed on replica 1 receives, in
  order, what the Python client publishes on replica 2, and the service's health check command
  passes against both.
* ``deploy/haproxy.cfg`` passes ``haproxy -c``; the same configuration, with its Docker DNS
  discovery replaced by the two local replicas, runs locally, and a WebSocket client subscribed
  through it receives what is published on both replicas (which proves the upgrade passes).
  Skipped, saying why, when ``haproxy`` is not installed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ..conftest import (
    ROOT,
    RedisProcess,
    RunningProcess,
    build_wheel,
    free_port,
    http_get,
    start_process,
    wait_until,
)
from .conftest import CLUSTER_APP_DIR, Children, JsonLines, deliver_in_order, require_node

yaml = pytest.importorskip("yaml", reason="PyYAML is in the dev extras (pip install -e '.[dev]')")

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
LB_API_KEY = "lb-test-api-key"
MESSAGES = 300


# -- reading the files -----------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution (``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``) applied to every string in ``value``."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1) or match.group(4)
            operator, default = match.group(2), match.group(3)
            if operator == ":-" and not env.get(name):
                return default
            if operator == "-" and name not in env:
                return default
            return env.get(name, "")

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as compose sees it with ``env`` (default: no variables set)."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return dict(interpolate(data, env or {}))


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def healthcheck_test(service: Mapping[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
    return [str(part) for part in test]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuation lines joined


def dockerfile_stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, line
            stages.append(Stage(match.group(1), match.group(2), []))
        elif stages:
            stages[-1].instructions.append((instruction, args.strip()))
    return stages


def compose_command() -> list[str]:
    hubbub = load_compose()["services"]["hubbub"]
    if "command" in hubbub:
        return [str(part) for part in hubbub["command"]]
    (cmd,) = [args for name, args in dockerfile_stages()[-1].instructions if name == "CMD"]
    return [str(part) for part in json.loads(cmd)]


# -- the structure ---------------------------------------------------------------------------


def test_compose_services_health_checks_and_scaling() -> None:
    services = load_compose()["services"]
    assert {"redis", "hubbub", "lb"} <= set(services)
    for name in ("redis", "hubbub", "lb"):
        assert healthcheck_test(services[name]), name

    redis = services["redis"]
    assert "redis-cli" in healthcheck_test(redis) and "ping" in healthcheck_test(redis)

    hubbub = services["hubbub"]
    env = environment(hubbub)
    # Scales: no host port and no container name (both would collide between replicas).
    assert "ports" not in hubbub and "container_name" not in hubbub
    assert hubbub.get("build") in (".", {"context": "."})
    assert str(env["HUBBUB_PORT"]) in [str(port) for port in hubbub.get("expose", [])]
    broker = urlsplit(env["HUBBUB_BROKER"])
    assert broker.scheme == "redis" and broker.hostname == "redis"
    assert hubbub["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/ready" in " ".join(healthcheck_test(hubbub))
    assert env["HUBBUB_AUTH_KEY"], "every replica must share one auth key"
    assert int(env["HUBBUB_WORKERS"]) >= 1
    # Docker's SIGKILL comes after the drain (drain_timeout + 5 s, see docs/deployment.md).
    grace = hubbub["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > float(env.get("HUBBUB_DRAIN_TIMEOUT", "10")) + 5

    lb = services["lb"]
    assert lb["depends_on"]["hubbub"]["condition"] == "service_healthy"
    assert any(str(volume).startswith("./deploy/haproxy.cfg:") for volume in lb["volumes"])
    (published,) = lb["ports"]
    host_port, container_port = str(published).rsplit(":", 1)
    assert host_port == "8000" and container_port == "8000"
    assert load_compose({"HUBBUB_LB_PORT": "9000"})["services"]["lb"]["ports"] == ["9000:8000"]

    # The load balancer finds the replicas by the service's DNS name, on the service's port, and
    # checks them on /ready.
    cfg = HAPROXY_CFG.read_text()
    assert re.search(rf"^\s*server-template\s+\S+\s+\d+\s+hubbub:{env['HUBBUB_PORT']}\b", cfg, re.M)
    assert re.search(r"^\s*option httpchk GET /ready\s*$", cfg, re.M)
    assert re.search(r"^\s*bind :8000\s*$", cfg, re.M)
    assert re.search(r"^\s*timeout tunnel \S+", cfg, re.M), "long-lived WebSockets need timeout tunnel"
    assert "/lb-health" in " ".join(healthcheck_test(lb))


def test_dockerfile_is_multi_stage_slim_and_unprivileged() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "builder and final stages"
    builder, final = stages[0], stages[-1]
    assert builder.name, "the builder stage is named"
    assert re.fullmatch(r"python:\S*-slim", final.base.replace("${PYTHON_VERSION}", "3")), final.base
    final_text = "\n".join(f"{name} {args}" for name, args in final.instructions)
    for tool in ("build-essential", "gcc", "apt-get install", "COPY . "):
        assert tool not in final_text, f"{tool!r} in the final stage"
    assert f"from={builder.name}" in final_text, "the final stage takes the builder's wheels"
    assert re.search(r"pip install .*--no-index .*--find-links=?\S*wheels.* hubbub", final_text)
    users = [args for name, args in final.instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    assert "wheel" in " ".join(args for name, args in builder.instructions if name == "RUN")
    (cmd,) = [args for name, args in final.instructions if name == "CMD"]
    assert json.loads(cmd) == compose_command()
    assert compose_command()[:2] == ["hubbub", "run"] and "0.0.0.0" in compose_command()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_dockerfile_builder_copies_enough_to_build_the_wheel(tmp_path: Path) -> None:
    """Copy exactly what the builder stage copies, and build the wheel from that alone."""
    builder = dockerfile_stages()[0]
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    context = tmp_path / "context"
    context.mkdir()
    for name, args in builder.instructions:
        if name != "COPY":
            continue
        *sources, _ = args.split()
        for source in sources:
            assert source not in ignored, f"{source} is copied but .dockerignore excludes it"
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, context / source)
    wheel = build_wheel(context, tmp_path / "out", timeout=110)
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("hubbub", "hubbub/cluster", "hubbub/broker", "hubbub/client", "hubbub/emitter"):
        assert f"{package}/__init__.py" in names, f"{package} is not in the image's wheel"


# -- the hubbub service, run locally ---------------------------------------------------------


@dataclass
class Replica:
    running: RunningProcess
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.running.port}/socketcluster/"


def _local_replica(own_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch) -> Replica:
    """The hubbub service's command with its environment, as a local process: the Redis host and
    port become the local redis-server's, the port a free one, 0.0.0.0 becomes 127.0.0.1."""
    services = load_compose()["services"]
    env = environment(services["hubbub"])
    broker = urlsplit(env["HUBBUB_BROKER"])
    assert broker.hostname in services, "the broker URL names the redis service"
    env["HUBBUB_BROKER"] = urlunsplit(broker._replace(netloc=f"127.0.0.1:{own_redis.port}"))
    env["HUBBUB_PORT"] = str(free_port())
    env["HUBBUB_APP"] = "cluster_app:app"  # the test app: its `worker` procedure names the process
    env["HUBBUB_API_KEY"] = LB_API_KEY  # the server API, which the load balancer must not forward
    env["PYTHONPATH"] = str(CLUSTER_APP_DIR)
    cmd = ["127.0.0.1" if part == "0.0.0.0" else part for part in compose_command()]
    executable = Path(sys.executable).with_name(cmd[0])
    assert executable.exists(), f"{cmd[0]} is not installed in the virtualenv"
    cmd[0] = str(executable)
    with monkeypatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("HUBBUB_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        running = start_process(cmd, cwd=CLUSTER_APP_DIR)
    return Replica(running, env)


@pytest.fixture
def replicas(own_redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for _ in range(2):
            started.append(_local_replica(own_redis_server, monkeypatch))
        yield started
    finally:
        for replica in started:
            replica.running.stop(timeout=20)


def _run_healthcheck(service: Mapping[str, Any], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    test = healthcheck_test(service)
    assert test[0] == "CMD"
    cmd = [sys.executable if part == "python" else part for part in test[1:]]
    return subprocess.run(
        cmd, env={**env, "PATH": ""}, capture_output=True, text=True, timeout=10, check=False
    )


@pytest.mark.redis
@pytest.mark.interop
@pytest.mark.timeout(120)
def test_compose_replicas_cross_workers_through_redis(replicas: list[Replica], children: Children) -> None:
    require_node()
    first, second = replicas
    hubbub = load_compose()["services"]["hubbub"]
    for replica in replicas:
        result = _run_healthcheck(hubbub, replica.env)
        assert result.returncode == 0, result.stderr
        assert (
            http_get(replica.url.replace("ws://", "http://").replace("/socketcluster/", "/ready"))[0] == 200
        )

    done, published = deliver_in_order(
        children, subscribe_url=first.url, publish_urls=[second.url], count=MESSAGES
    )
    assert done["ready_pid"] not in published["pids"]
    for replica in replicas:
        assert replica.running.proc.poll() is None, "\n".join(replica.running.lines[-40:])


# -- the load balancer -----------------------------------------------------------------------


def _http_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _require_haproxy() -> str:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install -y haproxy): load balancer config not checked")
    return haproxy


def test_haproxy_config_is_valid() -> None:
    haproxy = _require_haproxy()
    result = subprocess.run(
        [haproxy, "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def local_haproxy_cfg(listen_port: int, servers: list[int]) -> str:
    """deploy/haproxy.cfg with Docker's DNS discovery replaced by local servers and the listening
    address by a loopback port; every other line is kept. Each replacement must happen exactly once."""
    out: list[str] = []
    section = ""
    replaced = {"bind": 0, "server-template": 0, "resolvers": 0}
    for line in HAPROXY_CFG.read_text().splitlines():
        words = line.split()
        if line and not line[0].isspace() and not line.startswith("#"):
            section = words[0]
        if section == "resolvers":
            replaced["resolvers"] += words[:1] == ["resolvers"]
            continue
        if words[:1] == ["bind"]:
            replaced["bind"] += 1
            line = f"    bind 127.0.0.1:{listen_port}"
        elif words[:1] == ["server-template"]:
            replaced["server-template"] += 1
            out += [f"    server replica{i} 127.0.0.1:{port}" for i, port in enumerate(servers, 1)]
            continue
        elif words[:1] == ["default-server"]:
            line = re.sub(r"\s(resolvers \S+|init-addr \S+|resolve-prefer \S+)", "", line)
            assert "resolvers" not in line
        out.append(line)
    assert replaced == {"bind": 1, "server-template": 1, "resolvers": 1}, replaced
    return "\n".join(out) + "\n"


@pytest.mark.redis
@pytest.mark.interop
@pytest.mark.timeout(120)
def test_load_balancer_passes_websockets_to_the_replicas(
    replicas: list[Replica], children: Children, tmp_path: Path
) -> None:
    haproxy = _require_haproxy()
    require_node()
    lb_port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(local_haproxy_cfg(lb_port, [replica.running.port for replica in replicas]))
    check = subprocess.run(
        [haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr

    lb = JsonLines([haproxy, "-db", "-f", str(cfg)], cwd=tmp_path)
    try:
        # /lb-health answers 200 once at least one replica passed the /ready check.
        base = f"http://127.0.0.1:{lb_port}"

        def healthy() -> bool:
            assert lb.proc.poll() is None, f"haproxy exited with {lb.proc.returncode}:\n{lb.tail()}"
            return http_get(f"{base}/lb-health")[0] == 200

        wait_until(healthy, "the load balancer's /lb-health", 20, 0.05)
        assert lb.proc.poll() is None, lb.tail()
        assert http_get(f"{base}/ready")[0] == 200

        # The server API answers on a replica, but the load balancer does not forward it.
        publish = b'{"channel": "lb", "data": 1}'
        headers = {"X-API-Key": LB_API_KEY, "Content-Type": "application/json"}
        replica_http = f"http://127.0.0.1:{replicas[0].running.port}"
        assert _http_post(f"{replica_http}/api/publish", publish, headers) == (200, '{"result":{}}')
        for path in ("/api/publish", "/api/info", "/api/openapi.json", "/api/../api/info"):
            assert _http_post(f"{base}{path}", publish, headers)[0] == 404, path

        # The official client subscribes through the load balancer (a WebSocket upgrade through
        # HAProxy); message i is published on replica i % 2, so it hears from both.
        done, published = deliver_in_order(
            children,
            subscribe_url=f"ws://127.0.0.1:{lb_port}/socketcluster/",
            publish_urls=[replica.url for replica in replicas],
            count=MESSAGES,
        )
        assert len(set(published["pids"])) == 2
        assert len(done["latencies_ms"]) == MESSAGES
        # HAProxy logged the upgraded request once the subscriber closed it.
        upgraded = lb.wait_for_line("GET /socketcluster/", timeout=10)
        assert " 101 " in upgraded, lb.tail()
    finally:
        lb.stop()
