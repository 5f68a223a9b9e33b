"""The Python SDK for hubbub and SocketCluster servers."""
