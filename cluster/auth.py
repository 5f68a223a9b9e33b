"""Signing and verifying auth tokens the way socketcluster-server 20 does (jsonwebtoken 9.0.3, HMAC keys).

:class:`JwtAuth` is the server's auth engine. The cryptography is PyJWT's (:class:`jwt.PyJWS`); this
module adds what PyJWT does differently from jsonwebtoken:

* **Token bytes.** :meth:`JwtAuth.sign` produces byte-for-byte the token jsonwebtoken would for the same
  claims, key and time: header ``{"alg":"HS256","typ":"JWT"}``; payload = compact JSON of the claims in
  insertion order (JavaScript's order: integer-like keys first) with ``iat`` and then ``exp`` added
  (a key already present keeps its place), numbers formatted as ``JSON.stringify`` does, non-ASCII text
  as raw UTF-8. PyJWT's ``jwt.encode`` cannot do that (it writes non-ASCII as ``\\uXXXX`` escapes and
  Python float syntax), so the payload JSON is made here and handed as bytes to the public
  ``PyJWS.encode``, whose sorted compact header is exactly jsonwebtoken's.
* **Verification order and messages.** :meth:`JwtAuth.verify` runs jsonwebtoken's checks in its order and
  raises the SocketCluster error socketcluster-server would send (``AuthTokenInvalidError: jwt malformed``,
  ``AuthTokenExpiredError: jwt expired`` with ``expiry``, ...). The signature and the algorithm
  allow-list are checked by ``PyJWS.decode_complete``; ``nbf``/``exp`` are checked here, with an
  injectable clock, because jsonwebtoken and PyJWT disagree on which other claims to check (PyJWT also
  rejects a future ``iat`` or a non-string ``sub``, jsonwebtoken does not).
* **Short keys.** jsonwebtoken accepts any non-empty HMAC secret; PyJWT warns about secrets shorter than
  the hash. The engine registers HMAC algorithms without that warning so a short ``authKey`` behaves as
  it does in SocketCluster.

Only secret (HMAC) keys are supported: ``HS256`` (jsonwebtoken's default), ``HS384``, ``HS512``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeGuard

import jwt
from jwt.algorithms import HMACAlgorithm

from .._js import JSON_PARSE, js_date_iso, js_json_dumps
from ..protocol import (
    AuthTokenError,
    AuthTokenExpiredError,
    AuthTokenInvalidError,
    AuthTokenNotBeforeError,
    SCError,
)

__all__ = ["HMAC_ALGORITHMS", "JwtAuth", "SignedToken"]

#: The algorithms jsonwebtoken accepts for a secret key when none are configured.
HMAC_ALGORITHMS: tuple[str, ...] = ("HS256", "HS384", "HS512")

_HASHES = {"HS256": HMACAlgorithm.SHA256, "HS384": HMACAlgorithm.SHA384, "HS512": HMACAlgorithm.SHA512}


class _HMAC(HMACAlgorithm):
    """PyJWT's HMAC without the minimum-length warning (jsonwebtoken accepts any non-empty secret)."""

    def check_key_length(self, key: bytes) -> str | None:
        return None


class SignedToken(NamedTuple):
    """What :meth:`JwtAuth.sign_claims` returns: the signed token and the claims it carries.

    ``claims`` is a new dict (the caller's dict is never changed) holding the caller's claims plus the
    ``iat``/``exp`` that signing added, in the token's order -- socketcluster-server's
    ``socket.authToken`` after ``setAuthToken``.
    """

    token: str
    claims: dict[str, Any]


class JwtAuth:
    """Signs and verifies auth tokens like socketcluster-server 20 with an ``authKey``.

    ``key`` is the HMAC secret, used as its UTF-8 bytes (not hex-decoded). Without one, a random
    64-hex-character key is made, so tokens do not survive a restart (SocketCluster's behaviour).
    ``default_expiry`` is ``authDefaultExpiry`` in seconds; ``algorithm`` is used for signing.
    ``verify_algorithms`` are the ``alg`` values accepted when verifying: by default the HMAC family, as
    jsonwebtoken does when ``authAlgorithm`` is not set; SocketCluster restricts it to
    ``[authAlgorithm]`` when that option is given, and to ``authVerifyAlgorithms`` when that is.
    ``clock`` returns the current time in seconds (tests inject one).
    """

    def __init__(
        self,
        key: str | None = None,
        *,
        default_expiry: float = 86400,
        algorithm: str = "HS256",
        verify_algorithms: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if key is None:
            key = secrets.token_hex(32)
        if not isinstance(key, str) or not key:
            raise ValueError("the auth key must be a non-empty string")
        if algorithm not in _HASHES:
            raise ValueError(f"unsupported auth algorithm {algorithm!r}: expected one of {HMAC_ALGORITHMS}")
        accepted = tuple(HMAC_ALGORITHMS if verify_algorithms is None else verify_algorithms)
        unknown = [alg for alg in accepted if alg not in _HASHES]
        if unknown or not accepted:
            raise ValueError(
                f"unsupported verify algorithms {unknown or accepted!r}: expected {HMAC_ALGORITHMS}"
            )
        self.key = key
        self.default_expiry = _integral_seconds(default_expiry, "default_expiry")
        self.algorithm = algorithm
        self.verify_algorithms = accepted
        self._clock = clock
        self._key_bytes = key.encode("utf-8")
        self._jws = jwt.PyJWS(algorithms=[])
        for name, hash_alg in _HASHES.items():
            self._jws.register_algorithm(name, _HMAC(hash_alg))
        try:  # PyJWT refuses secrets that look like PEM/SSH/JWK key material; fail at start-up, not per token
            self._jws.get_algorithm_by_name(algorithm).prepare_key(self._key_bytes)
        except jwt.InvalidKeyError as exc:
            raise ValueError(f"unusable auth key: {exc}") from exc

    # -- signing -----------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], *, expires_in: float | None = None) -> str:
        """The signed token for ``claims`` (see :meth:`sign_claims`, which also returns the claims)."""
        return self.sign_claims(claims, expires_in=expires_in).token

    def sign_claims(self, claims: dict[str, Any], *, expires_in: float | None = None) -> SignedToken:
        """Sign a deep copy of ``claims`` as ``socket.setAuthToken(claims, {expiresIn})`` does.

        ``iat`` is set to the current whole second unless ``claims`` has a non-zero ``iat``. When
        ``claims`` has no ``exp``, ``exp = iat + (expires_in or default_expiry)``; when it has one, it is
        kept and ``expires_in`` is ignored (as socketcluster-server drops the option). Raises
        :class:`TypeError`/:class:`ValueError` with jsonwebtoken's messages when the claims cannot be
        signed (socketcluster-server then closes the socket with 4002).
        """
        if not isinstance(claims, dict):
            raise TypeError('Expected "payload" to be a plain object.')
        payload = copy.deepcopy(claims)
        for claim in ("iat", "exp", "nbf"):
            if claim in payload and not _is_number(payload[claim]):
                raise ValueError(f'"{claim}" should be a number of seconds')
        iat = payload.get("iat") or math.floor(self._clock())
        payload["iat"] = iat
        if "exp" not in payload:
            seconds = (
                self.default_expiry if expires_in is None else _integral_seconds(expires_in, "expiresIn")
            )
            payload["exp"] = iat + seconds
        body = js_json_dumps(payload).encode("utf-8")
        token = self._jws.encode(body, self._key_bytes, algorithm=self.algorithm)
        return SignedToken(token, payload)

    # -- verifying ---------------------------------------------------------------------------------

    def verify(self, token: object) -> dict[str, Any]:
        """The claims of ``token`` if it is valid now; otherwise raise what socketcluster-server sends.

        * ``None`` or ``""`` → ``AuthTokenInvalidError("jwt must be provided")``;
        * not a string → ``AuthTokenError("Invalid token format - Token must be a string")``;
        * not three ``.``-separated parts → ``AuthTokenInvalidError("jwt malformed")``; undecodable
          header → ``"invalid token"``; ``typ: JWT`` with a payload that is not JSON → ``AuthTokenError``;
          no signature → ``"jwt signature is required"``; ``alg`` not accepted → ``"invalid algorithm"``;
          wrong key → ``"invalid signature"``; a non-numeric ``nbf``/``exp`` → ``"invalid nbf value"`` /
          ``"invalid exp value"`` (all ``AuthTokenInvalidError``);
        * ``nbf`` in the future → ``AuthTokenNotBeforeError("jwt not active", date=<ISO>)``;
        * ``exp`` reached → ``AuthTokenExpiredError("jwt expired", expiry=<ISO>)``.

        Every error carries ``isBadToken`` (``False`` only for not-before), so its dehydrated form is
        ``{"message", "name", ["expiry"|"date",] "isBadToken"}`` as on the wire. A payload that verifies
        but is not a JSON object (jsonwebtoken would return a string) is reported as ``"invalid token"``.
        """
        if token is None or token == "":
            raise _invalid("jwt must be provided")
        if not isinstance(token, str):
            raise AuthTokenError("Invalid token format - Token must be a string", isBadToken=True)
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid("jwt malformed")
        header, payload = _decode_parts(token, parts)
        if not parts[2].strip():
            raise _invalid("jwt signature is required")
        if header.get("alg") not in self.verify_algorithms:
            raise _invalid("invalid algorithm")
        try:
            self._jws.decode_complete(token, self._key_bytes, algorithms=self.verify_algorithms)
        except jwt.InvalidAlgorithmError:
            raise _invalid("invalid algorithm") from None
        except jwt.DecodeError:  # includes InvalidSignatureError; header/payload were decoded above
            raise _invalid("invalid signature") from None
        except jwt.InvalidTokenError:  # header members PyJWT insists on (kid, crit)
            raise _invalid("invalid token") from None
        if not isinstance(payload, dict):
            raise _invalid("invalid token")
        now = math.floor(self._clock())
        nbf = payload.get("nbf")
        if "nbf" in payload:
            if not _is_number(nbf):
                raise _invalid("invalid nbf value")
            if nbf > now:
                raise AuthTokenNotBeforeError("jwt not active", date=js_date_iso(nbf), isBadToken=False)
        exp = payload.get("exp")
        if "exp" in payload:
            if not _is_number(exp):
                raise _invalid("invalid exp value")
            if now >= exp:
                raise AuthTokenExpiredError("jwt expired", expiry=js_date_iso(exp), isBadToken=True)
        return payload

    def is_expired(self, claims: dict[str, Any]) -> bool:
        """Whether a verified token's claims have expired (``Date.now() > exp * 1000``).

        socketcluster-server runs this check on every pong and inbound event and deauthenticates the
        socket when it is true (§7.5).
        """
        exp = claims.get("exp")
        return _is_number(exp) and self._clock() * 1000 > exp * 1000


# -- helpers -----------------------------------------------------------------------------------------


def _invalid(message: str) -> SCError:
    return AuthTokenInvalidError(message, isBadToken=True)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integral_seconds(value: float, option: str) -> int:
    if not _is_number(value) or not float(value).is_integer():
        raise ValueError(f'"{option}" should be a number of seconds or string representing a timespan')
    return int(value)


_JWS_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _b64url(segment: str) -> bytes:
    """Strict base64url (no padding, canonical trailing bits), as PyJWT will insist on later."""
    if len(segment) % 4 == 1:
        raise ValueError("bad base64url length")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise ValueError("non-canonical base64url")
    return raw


def _decode_parts(token: str, parts: list[str]) -> tuple[dict[str, Any], Any]:
    """Header and payload of a three-part token, with jws/jsonwebtoken's errors.

    As jws does, the payload is parsed as JSON only when the header says ``"typ": "JWT"`` (a parse
    error then surfaces as a plain ``SyntaxError`` → ``AuthTokenError``); otherwise it is parsed if it
    can be and kept as text if not.
    """
    if not _JWS_SHAPE.fullmatch(token):
        raise _invalid("invalid token")
    try:
        header = JSON_PARSE.decode(_b64url(parts[0]).decode("utf-8"))
        payload_text = _b64url(parts[1]).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError, RecursionError):
        raise _invalid("invalid token") from None
    if not isinstance(header, dict):
        raise _invalid("invalid token")
    try:
        payload: Any = JSON_PARSE.decode(payload_text)
    except (ValueError, RecursionError) as exc:  # nested past the parser's depth: not JSON we take
        if header.get("typ") == "JWT":
            raise AuthTokenError(f"Unexpected token in JSON payload: {exc}", isBadToken=True) from None
        payload = payload_text
    return header, payload
