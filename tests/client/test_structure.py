"""The client package's shape: no import cycles (type-checking imports count), one job per module."""

from __future__ import annotations

import ast
from pathlib import Path

import hubbub.client

PACKAGE = Path(hubbub.client.__file__).resolve().parent
MAX_CLASS_LINES = 250


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.glob("*.py"))}


def client_imports(tree: ast.Module) -> set[str]:
    """The client modules ``tree`` imports anywhere (inside ``if TYPE_CHECKING:`` and functions too)."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif node.level == 1:
            found.update(alias.name for alias in node.names)
        elif node.module and node.module.startswith("hubbub.client."):
            found.add(node.module.split(".")[2])
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done:
            return None
        visiting.append(name)
        for target in sorted(graph.get(name, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle:
            return cycle
    return None


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_client_modules_import_each_other_one_way() -> None:
    graph = {name: client_imports(tree) - {name} for name, tree in modules().items() if name != "__init__"}
    assert find_cycle(graph) is None


def test_every_module_says_its_job() -> None:
    missing = [name for name, tree in modules().items() if not ast.get_docstring(tree)]
    assert missing == []


def test_no_class_is_too_big() -> None:
    sizes = {
        f"{name}.{node.name}": (node.end_lineno or node.lineno) - node.lineno + 1
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    assert {name: size for name, size in sizes.items() if size > MAX_CLASS_LINES} == {}


def test_the_public_names_are_pinned() -> None:
    public = {name for name in vars(hubbub.client) if not name.startswith("_")}
    public -= {name for name in public if isinstance(getattr(hubbub.client, name), type(hubbub))}
    assert public == {
        *("AckTimeoutError", "AuthState", "AuthStateChanged", "BlockingChannel", "BlockingClient"),
        *("Channel", "ChannelOverflowError", "ChannelState", "Client", "ClientError", "ClientEvent"),
        *("ClientOptions", "ClientState", "ClientStatistics", "ConnectError", "ConnectFailed"),
        *("Connected", "ConnectionClosedError", "Disconnected", "FileTokenStore", "Handler"),
        *("HandshakeError", "KickedOut", "KickedOutError", "MemoryTokenStore", "NotConnectedError"),
        *("Overflow", "ReconnectOptions", "Reconnecting", "RemoteError", "SCError", "TokenChanged"),
        *("TokenStore", "connect", "connect_blocking"),
    }
