"""The session layer: one client's SocketCluster semantics on top of a transport connection.

:mod:`.session` holds a client's state and sends its packets; :mod:`.events` is the inbound
dispatch (an event table) with the handshake and auth flows, :mod:`.channels` the subscribe,
unsubscribe and publish handlers, :mod:`.procedures` the app's procedures and receivers run in
ordered :mod:`.lanes`, :mod:`.calls` the table of server-to-client invokes.
"""
