"""hubbub: real-time pub/sub over WebSockets, wire-compatible with SocketCluster v20."""

from ._version import __version__ as __version__
