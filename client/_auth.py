"""Auth tokens on the client: where the signed token is kept, and the auth state.

The server signs tokens; the client only keeps the signed string, sends it on every handshake and
reads its claims without verifying them (as socketcluster-client does).
"""

from __future__ import annotations

import enum
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from hubbub.protocol import extract_auth_token_data

__all__ = ["AuthState", "FileTokenStore", "MemoryTokenStore", "TokenStore", "token_payload"]


class AuthState(enum.Enum):
    """The client's auth state, as socketcluster-client names it."""

    UNAUTHENTICATED = "unauthenticated"
    AUTHENTICATED = "authenticated"


class TokenStore(Protocol):
    """Where the signed auth token is kept between connections (and, for a file, between runs)."""

    def load(self) -> str | None:
        """The stored token, or None."""
        ...

    def save(self, token: str) -> None:
        """Store ``token``, replacing any previous one."""
        ...

    def clear(self) -> None:
        """Forget the stored token."""
        ...


class MemoryTokenStore:
    """Keeps the token in memory for the life of the client (the default)."""

    def __init__(self, token: str | None = None) -> None:
        self._token = token

    def load(self) -> str | None:
        """The stored token, or None."""
        return self._token

    def save(self, token: str) -> None:
        """Store ``token``."""
        self._token = token

    def clear(self) -> None:
        """Forget the token."""
        self._token = None


class FileTokenStore:
    """Keeps the token in a file (mode 0600), so a script can stay logged in across runs.

    The file holds the signed token and nothing else; it is replaced atomically on save.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        """The token in the file, or None when there is no file or it is empty."""
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return token or None

    def save(self, token: str) -> None:
        """Write ``token`` to the file (atomically, readable only by the owner)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(token)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        """Delete the file."""
        self.path.unlink(missing_ok=True)


def token_payload(token: str | None) -> Any:
    """The claims of a signed token, decoded **without** verifying the signature (None for no token)."""
    if token is None:
        return None
    return extract_auth_token_data(token)
