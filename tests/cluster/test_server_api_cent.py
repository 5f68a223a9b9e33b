"""Centrifugo's own Python API client (``cent`` from PyPI) against hubbub, unchanged.

``cent.Client(api_url, api_key)`` publishes, broadcasts, batches and lists channels and workers on
``hubbub run --workers 2`` with Redis, and the official JavaScript client (socketcluster-client,
subscribed through one of the workers) receives what it published, in order.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import cent
import pytest
import trio

from ..conftest import INTEROP, RedisProcess
from .api_helpers import KEY
from .conftest import ClusterFactory
from .test_supervisor import _read_json_lines

pytestmark = [pytest.mark.redis, pytest.mark.interop, pytest.mark.trio]


def _message(i: int) -> dict[str, float]:
    return {"i": i, "t": time.time() * 1000}


def _drive(api_url: str, channel: str, other: str) -> dict[str, Any]:
    """What a backend does with cent (synchronous, as in a Django view); the answers it got."""
    client = cent.Client(api_url, KEY, timeout=10)
    seen: dict[str, Any] = {}
    seen["publish"] = client.publish(cent.PublishRequest(channel=channel, data=_message(0)))
    seen["broadcast"] = client.broadcast(cent.BroadcastRequest(channels=[channel, other], data=_message(1)))
    seen["batch"] = client.batch(
        cent.BatchRequest(
            requests=[
                cent.PublishRequest(channel=channel, data=_message(2)),
                cent.PublishRequest(channel=channel, data=_message(3), idempotency_key="k"),
                cent.PublishRequest(channel=channel, data=_message(3), idempotency_key="k"),
            ]
        )
    )
    seen["channels"] = client.channels(cent.ChannelsRequest())
    seen["channels_filtered"] = client.channels(cent.ChannelsRequest(pattern="nothing-*"))
    seen["info"] = client.info(cent.InfoRequest())
    with pytest.raises(cent.CentApiResponseError) as caught:
        client.presence(cent.PresenceRequest(channel=channel))
    seen["presence_error"] = caught.value.code
    with pytest.raises(cent.CentUnauthorizedError):
        cent.Client(api_url, "wrong key").publish(cent.PublishRequest(channel=channel, data=1))
    seen["disconnect"] = client.disconnect(cent.DisconnectRequest(user="nobody"))
    seen["unsubscribe"] = client.unsubscribe(cent.UnsubscribeRequest(user="nobody", channel=channel))
    client.publish(cent.PublishRequest(channel=channel, data=_message(4)))
    seen["history"] = client.history(cent.HistoryRequest(channel=channel, limit=-1))
    seen["history_top"] = client.history(cent.HistoryRequest(channel=channel, limit=2, reverse=True))
    seen["history_remove"] = client.history_remove(cent.HistoryRemoveRequest(channel=channel))
    seen["history_after"] = client.history(cent.HistoryRequest(channel=channel, limit=-1))
    return seen


async def test_cent_publishes_and_the_official_client_receives(
    hubbub_cluster: ClusterFactory, redis_server: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    config = tmp_path / "hubbub.toml"
    config.write_text('[[channels]]\nmatch = "history/*"\nhistory_size = 10\nhistory_ttl = 60\n')
    cluster = hubbub_cluster(
        "--broker", redis_server.url, "--broker-prefix", prefix, "--api-key", KEY, "--config", str(config)
    )
    channel, other = f"history/{uuid.uuid4().hex[:8]}", f"cent-{uuid.uuid4().hex[:8]}"
    node = await trio.lowlevel.open_process(
        ["node", "cross_worker.js", "--url", cluster.url, "--channel", channel, "--count", "5"],
        cwd=INTEROP,
        stdout=subprocess.PIPE,
    )
    try:
        assert node.stdout is not None
        send, receive = trio.open_memory_channel[Any](10)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_json_lines, node.stdout, send)
            with trio.fail_after(20):
                ready = await receive.receive()
            assert ready["event"] == "ready", ready
            seen = await trio.to_thread.run_sync(_drive, cluster.http + "/api", channel, other)
            with trio.fail_after(15):
                done = await receive.receive()
            nursery.cancel_scope.cancel()
    finally:
        with trio.move_on_after(5) as scope:
            scope.shield = True
            if node.returncode is None:
                node.kill()
            await node.wait()
    assert done["event"] == "done", done
    assert done["order"] == [0, 1, 2, 3, 4]  # the idempotent repeat was not published

    epoch = seen["publish"].epoch
    assert seen["publish"].offset == 1 and epoch
    responses = seen["broadcast"].responses
    assert [response.error for response in responses] == [None, None]
    assert (responses[0].result.offset, responses[1].result.offset) == (2, 0)  # `other` keeps no history
    assert [(reply.offset, reply.epoch) for reply in seen["batch"].replies] == [
        (3, epoch),
        (4, epoch),
        (4, epoch),
    ]
    history = seen["history"]
    assert (history.offset, history.epoch) == (5, epoch)
    assert [(p.offset, p.data["i"]) for p in history.publications] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert [p.offset for p in seen["history_top"].publications] == [5, 4]
    assert seen["history_after"].publications == [] and seen["history_after"].offset == 5
    channels = seen["channels"].channels
    assert channels[channel].num_clients == 1  # the JavaScript subscriber
    assert seen["channels_filtered"].channels == {}
    nodes = seen["info"].nodes
    assert len(nodes) == 2 and len({node.uid for node in nodes}) == 2
    assert all(node.version for node in nodes)
    assert seen["presence_error"] == 108
