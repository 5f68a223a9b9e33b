"""The worker's transport layer: bytes and WebSocket frames, nothing of SocketCluster.

Accepting connections (:mod:`.listen`), the HTTP phase and the upgrade (:mod:`.handshake`,
:mod:`.upgrade`, :mod:`.http`), sending (:mod:`.outbound`, :mod:`.framing`) and the connection
states (:mod:`.state`). Nothing here imports from the layers above.
"""
