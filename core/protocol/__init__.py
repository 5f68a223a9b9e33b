"""The SocketCluster v20 protocol, without I/O: codecs, packets, errors, close codes, connection rules."""

from ._codec import Codec as Codec
from ._codec import CodecError as CodecError
from ._codec_registry import get_codec as get_codec
from ._codes import CloseCode as CloseCode
from ._codes import ReconnectAction as ReconnectAction
from ._codes import reconnect_action as reconnect_action
from ._connection import PING as PING
from ._connection import PONG as PONG
from ._connection import CallIds as CallIds
from ._connection import Connection as Connection
from ._connection import Heartbeat as Heartbeat
from ._connection import Liveness as Liveness
from ._connection import ProtocolViolation as ProtocolViolation
from ._connection import Role as Role
from ._connection import State as State
from ._errors import AuthTokenError as AuthTokenError
from ._errors import AuthTokenExpiredError as AuthTokenExpiredError
from ._errors import AuthTokenInvalidError as AuthTokenInvalidError
from ._errors import AuthTokenNotBeforeError as AuthTokenNotBeforeError
from ._errors import BrokerError as BrokerError
from ._errors import InvalidActionError as InvalidActionError
from ._errors import InvalidMessageError as InvalidMessageError
from ._errors import SCError as SCError
from ._errors import SilentMiddlewareBlockedError as SilentMiddlewareBlockedError
from ._errors import dehydrate_error as dehydrate_error
from ._errors import hydrate_error as hydrate_error
from ._json_codec import PUBLISH_PREFIX as PUBLISH_PREFIX
from ._json_codec import ClientPublish as ClientPublish
from ._json_codec import JsonCodec as JsonCodec
from ._minbin_codec import MinBinCodec as MinBinCodec
from ._packets import UNDEFINED as UNDEFINED
from ._packets import Invoke as Invoke
from ._packets import Packet as Packet
from ._packets import Raw as Raw
from ._packets import Response as Response
from ._packets import Transmit as Transmit
from ._packets import client_invoke_packet as client_invoke_packet
from ._packets import read_packets as read_packets
from ._packets import response_packet as response_packet
from ._packets import server_invoke_packet as server_invoke_packet
from ._packets import transmit_packet as transmit_packet
from ._token import TokenDecodeError as TokenDecodeError
from ._token import decode_unverified as decode_unverified
from ._token import extract_auth_token_data as extract_auth_token_data

__all__ = [
    "PING",
    "PONG",
    "PUBLISH_PREFIX",
    "UNDEFINED",
    "AuthTokenError",
    "AuthTokenExpiredError",
    "AuthTokenInvalidError",
    "AuthTokenNotBeforeError",
    "BrokerError",
    "CallIds",
    "ClientPublish",
    "CloseCode",
    "Codec",
    "CodecError",
    "Connection",
    "Heartbeat",
    "InvalidActionError",
    "InvalidMessageError",
    "Invoke",
    "JsonCodec",
    "Liveness",
    "MinBinCodec",
    "Packet",
    "ProtocolViolation",
    "Raw",
    "ReconnectAction",
    "Response",
    "Role",
    "SCError",
    "SilentMiddlewareBlockedError",
    "State",
    "TokenDecodeError",
    "Transmit",
    "client_invoke_packet",
    "decode_unverified",
    "dehydrate_error",
    "extract_auth_token_data",
    "get_codec",
    "hydrate_error",
    "read_packets",
    "reconnect_action",
    "response_packet",
    "server_invoke_packet",
    "transmit_packet",
]
