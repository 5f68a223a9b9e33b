"""Brokers route channel messages between workers: in memory for one process, Redis for many."""

from ._base import Broker as Broker
from ._base import BrokerUnavailable as BrokerUnavailable
from ._base import DeliverFn as DeliverFn
from ._base import InProcessDelivery as InProcessDelivery
from ._envelope import Envelope as Envelope
from ._envelope import EnvelopeError as EnvelopeError
from ._memory import MemoryBroker as MemoryBroker
from ._redis import RedisBroker as RedisBroker
from ._redis_session import BrokerStats as BrokerStats
from ._redis_target import RedisTarget as RedisTarget
from ._url import ManagedBroker as ManagedBroker
from ._url import open_broker as open_broker
from ._url import parse_redis_url as parse_redis_url

__all__ = [
    "Broker",
    "BrokerStats",
    "BrokerUnavailable",
    "DeliverFn",
    "Envelope",
    "EnvelopeError",
    "InProcessDelivery",
    "ManagedBroker",
    "MemoryBroker",
    "RedisBroker",
    "RedisTarget",
    "open_broker",
    "parse_redis_url",
]
