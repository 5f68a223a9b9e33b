"""Brokers route channel messages between workers: in memory for one process, Redis for many."""

from ._base import Broker as Broker
from ._base import BrokerUnavailable as BrokerUnavailable
from ._base import DeliverFn as DeliverFn
from ._base import InProcessDelivery as InProcessDelivery
from ._channel_options import ChannelOptions as ChannelOptions
from ._channel_options import ChannelRule as ChannelRule
from ._channel_options import ChannelRules as ChannelRules
from ._envelope import Envelope as Envelope
from ._envelope import EnvelopeError as EnvelopeError
from ._history import HistoryBroker as HistoryBroker
from ._history import HistoryEntry as HistoryEntry
from ._history import HistoryOptions as HistoryOptions
from ._history import HistoryPage as HistoryPage
from ._history import PositionedDeliverFn as PositionedDeliverFn
from ._history import StreamPosition as StreamPosition
from ._memory import MemoryBroker as MemoryBroker
from ._redis import RedisBroker as RedisBroker
from ._redis_session import BrokerStats as BrokerStats
from ._redis_target import RedisTarget as RedisTarget
from ._url import ManagedBroker as ManagedBroker
from ._url import open_broker as open_broker
from ._url import parse_redis_url as parse_redis_url
from ._values import SharedValues as SharedValues

__all__ = [
    "Broker",
    "BrokerStats",
    "BrokerUnavailable",
    "ChannelOptions",
    "ChannelRule",
    "ChannelRules",
    "DeliverFn",
    "Envelope",
    "EnvelopeError",
    "HistoryBroker",
    "HistoryEntry",
    "HistoryOptions",
    "HistoryPage",
    "InProcessDelivery",
    "ManagedBroker",
    "MemoryBroker",
    "PositionedDeliverFn",
    "RedisBroker",
    "RedisTarget",
    "SharedValues",
    "StreamPosition",
    "open_broker",
    "parse_redis_url",
]
