"""What a client is told when app code fails, and what the log is told.

An exception a procedure or a middleware raises is either the app's own answer or a bug. An
:class:`~hubbub.protocol.SCError` is an answer (its name and fields are sent), and so is a plain
``Exception`` (its message, as socketcluster-server sends a plain ``Error``). Any other exception
(``OSError``, ``KeyError``, ``TypeError`` ...) is a bug whose text may hold paths, errno, key names
or type names: the client gets a generic error carrying a reference, and the log gets the details
with the traceback, once, at WARNING, under the same reference.
"""

from __future__ import annotations

import logging
import secrets

from hubbub.protocol import SCError

from ._loop import foreign_loop_message

__all__ = ["for_client", "log_app_failure", "unencodable"]

log = logging.getLogger("hubbub.app")


def for_client(error: Exception, where: str) -> Exception:
    """The error to send a client for ``error``, raised by the app code named by ``where``."""
    if isinstance(error, SCError):
        return error
    foreign = foreign_loop_message(error, where)
    if foreign is not None:
        log.error("%s", foreign)
        return Exception(foreign)
    if type(error) is Exception:
        log.warning("%s raised", where, exc_info=error)
        return error
    reference = _reference()
    log.warning("%s raised (reference %s)", where, reference, exc_info=error)
    return Exception(f"Internal server error (reference {reference})")


def log_app_failure(error: BaseException, where: str) -> None:
    """Log that app code named by ``where`` (a receiver, a hook) raised ``error``.

    An error from a library of the other event loop is one line naming the ``--loop`` to use.
    """
    foreign = foreign_loop_message(error, where)
    if foreign is not None:
        log.error("%s", foreign)
    else:
        log.warning("%s raised", where, exc_info=error)


def unencodable(error: Exception, socket_id: str) -> Exception:
    """The error to send instead of a response the codec could not encode; logs one line."""
    reference = _reference()
    log.warning(
        "socket %s: a response could not be encoded (reference %s): %s: %s",
        socket_id,
        reference,
        type(error).__name__,
        error,
    )
    return Exception(f"The response could not be encoded (reference {reference})")


def _reference() -> str:
    return secrets.token_hex(4)
