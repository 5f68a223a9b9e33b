"""Brokers route channel messages between workers: in memory for one process, Redis for many."""

from .base import Broker as Broker
from .base import BrokerUnavailable as BrokerUnavailable
from .base import DeliverFn as DeliverFn
from .envelope import Envelope as Envelope
from .envelope import EnvelopeError as EnvelopeError
from .memory import MemoryBroker as MemoryBroker
from .redis import BrokerStats as BrokerStats
from .redis import RedisBroker as RedisBroker
from .redis import RedisTarget as RedisTarget
from .url import ManagedBroker as ManagedBroker
from .url import open_broker as open_broker
from .url import parse_redis_url as parse_redis_url
