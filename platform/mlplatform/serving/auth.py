"""Who may call the API: a bearer token, when one is configured.

    MLPLATFORM_API_TOKEN        the token itself
    MLPLATFORM_API_TOKEN_FILE   a file holding it (how a Kubernetes secret is mounted); wins if both are set

With a token, every endpoint but `/health` (the load balancer's probe) answers 401 unless the request
carries `Authorization: Bearer <token>`; the comparison takes the same time whatever the guess
(`hmac.compare_digest`). Without one the API is open, which `serve` allows only on a loopback
address and never on the production profile. The token is never printed: messages name the
setting, not its value.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "MLPLATFORM_API_TOKEN"
TOKEN_FILE_ENV = "MLPLATFORM_API_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16  # shorter is guessable; `openssl rand -hex 32` gives 64
OPEN_PATHS = frozenset({"/health"})


class TokenError(ValueError):
    """The token's setting is wrong; the message names the setting, never the token."""


def api_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The configured token, or None when neither setting is given."""
    env = os.environ if environ is None else environ
    path, token, source = env.get(TOKEN_FILE_ENV), env.get(TOKEN_ENV), TOKEN_ENV
    if path:
        try:
            token, source = Path(path).read_text().strip(), f"{TOKEN_FILE_ENV}={path}"
        except OSError as err:
            raise TokenError(f"{TOKEN_FILE_ENV}={path}: cannot read the token file ({err.strerror or err})") from None
    if token is None:
        return None
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenError(f"{source}: the API token is {'empty' if not token else 'too short'}; use at least "
                         f"{MIN_TOKEN_LENGTH} characters (for example `openssl rand -hex 32`)")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise TokenError(f"{source}: the API token may not contain spaces or control characters")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def why_open_is_refused(host: str, production: bool) -> str | None:
    """Why `serve` may not run without a token here, or None where an open API is allowed."""
    if production:
        return "the production profile requires an API token"
    if not is_loopback(host):
        return f"serving on {host}, beyond this machine, requires an API token"
    return None


def authorized(headers: list[tuple[bytes, bytes]], token: bytes) -> bool:
    """Whether the request's `Authorization` header carries the token (constant-time comparison)."""
    given = b""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer":
                given = credentials.strip()
            break
    return hmac.compare_digest(given, token)
