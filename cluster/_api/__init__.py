"""The HTTP server API: ``POST /api/<method>`` in the request and response shapes of Centrifugo's."""
