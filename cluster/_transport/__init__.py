"""The worker's transport layer: bytes and WebSocket frames, nothing of SocketCluster.

Accepting connections (:mod:`.listen`), the HTTP phase and the upgrade (:mod:`.handshake`,
:mod:`.upgrade`, :mod:`.http`), one connection's read loop, reassembly and closing
(:mod:`.connection`), sending (:mod:`.outbound`, :mod:`.framing`) and the worker's timers
(:mod:`.timers`). Complete messages go to a :class:`~.link.MessageSink` the layer above
provides; nothing here imports from that layer.
"""
