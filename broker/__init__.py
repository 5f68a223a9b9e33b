"""Brokers route channel messages between workers: in memory for one process, Redis for many."""

from .base import Broker as Broker
from .base import BrokerUnavailable as BrokerUnavailable
from .base import DeliverFn as DeliverFn
from .memory import MemoryBroker as MemoryBroker
