"""Who may call the API: the token's settings, and `serve` refusing to run open where it must not.
The token against a real server is in test_serving.py (`test_a_configured_token_keeps_strangers_out`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.serving.auth import TOKEN_ENV, TOKEN_FILE_ENV, TokenError, api_token, authorized, why_open_is_refused

pytestmark = pytest.mark.fast
SECRET = "s3cret-token-0123456789abcdef"


def test_the_token_comes_from_the_environment_or_a_secret_file(tmp_path: Path) -> None:
    assert api_token({}) is None
    assert api_token({TOKEN_ENV: f"  {SECRET}\n"}) == SECRET
    secret = tmp_path / "api-token"
    secret.write_text(SECRET + "\n")
    assert api_token({TOKEN_FILE_ENV: str(secret), TOKEN_ENV: "another-token-of-enough-length"}) == SECRET


@pytest.mark.parametrize("environ, words", [
    ({TOKEN_ENV: ""}, "MLPLATFORM_API_TOKEN: the API token is empty"),
    ({TOKEN_ENV: "short-token"}, "too short; use at least 16 characters"),
    ({TOKEN_ENV: "two words in a token"}, "may not contain spaces"),
    ({TOKEN_FILE_ENV: "/nonexistent/api-token"}, "MLPLATFORM_API_TOKEN_FILE=/nonexistent/api-token: cannot read"),
])
def test_a_wrong_token_setting_is_named_and_the_token_never_printed(environ, words) -> None:
    with pytest.raises(TokenError) as raised:
        api_token(environ)
    assert words in str(raised.value)
    for value in environ.values():
        if value and "/" not in value:
            assert value not in str(raised.value)


def test_only_the_exact_bearer_token_is_authorized() -> None:
    token = SECRET.encode()
    assert authorized([(b"Authorization", b"Bearer " + token)], token)
    assert authorized([(b"authorization", b"bearer " + token)], token)
    for header in ([], [(b"authorization", token)], [(b"authorization", b"Bearer " + token[:-1])],
                   [(b"authorization", b"Basic " + token)], [(b"authorization", b"Bearer " + token + b"x")]):
        assert not authorized(header, token)


def test_an_open_api_is_refused_beyond_loopback_and_on_production() -> None:
    assert why_open_is_refused("127.0.0.1", production=False) is None
    assert why_open_is_refused("::1", production=False) is None
    assert "beyond this machine" in why_open_is_refused("0.0.0.0", production=False)
    assert "production profile requires an API token" in why_open_is_refused("127.0.0.1", production=True)


@pytest.mark.parametrize("args, env, words", [
    (["serve", "--host", "0.0.0.0"], {}, "serving on 0.0.0.0, beyond this machine, requires an API token"),
    (["serve"], {"MLPLATFORM_PROFILE": "production", "MLPLATFORM_POSTGRES_URL": "postgresql://u:p@127.0.0.1:9/db",
                 "MLPLATFORM_REDIS_URL": "redis://127.0.0.1:9/0"}, "the production profile requires an API token"),
    (["serve"], {TOKEN_ENV: "short"}, "MLPLATFORM_API_TOKEN: the API token is too short"),
])
def test_serve_refuses_to_start_open_where_it_must_not(tmp_path: Path, args, env, words) -> None:
    import os

    done = subprocess.run([str(Path(sys.executable).with_name("mlplatform")), "--home", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in {**os.environ, **env}.items()
                               if k not in (TOKEN_ENV, TOKEN_FILE_ENV) or k in env})
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert "MLPLATFORM_API_TOKEN" in done.stderr
