"""The SocketCluster v20 protocol, without I/O: codecs, packets, errors, close codes, connection rules."""

from .codec import ClientPublish as ClientPublish
from .codec import Codec as Codec
from .codec import CodecError as CodecError
from .codec import JsonCodec as JsonCodec
from .codec import get_codec as get_codec
from .codes import CloseCode as CloseCode
from .codes import ReconnectAction as ReconnectAction
from .codes import reconnect_action as reconnect_action
from .connection import PING as PING
from .connection import PONG as PONG
from .connection import CallIds as CallIds
from .connection import Connection as Connection
from .connection import Heartbeat as Heartbeat
from .connection import Liveness as Liveness
from .connection import ProtocolViolation as ProtocolViolation
from .connection import Role as Role
from .connection import State as State
from .errors import SCError as SCError
from .errors import dehydrate_error as dehydrate_error
from .errors import hydrate_error as hydrate_error
from .packets import Invoke as Invoke
from .packets import Packet as Packet
from .packets import Raw as Raw
from .packets import Response as Response
from .packets import Transmit as Transmit
from .packets import read_packets as read_packets
