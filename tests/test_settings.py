"""Settings come from the environment; bad values stop start-up with one line naming them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tinystacks import env

BASE_DIR = Path(settings.BASE_DIR)


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean | environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"DEBUG": "1", "DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"DEBUG": "1", "DATABASE_URL": "postgres://u@h:notaport/db"}, "DATABASE_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"DEBUG": "1", "REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"DEBUG": "1", "TINYSTACKS_POLL_SECONDS": "soon"}, "TINYSTACKS_POLL_SECONDS"),
        ({"DEBUG": "0", "SECRET_KEY_FILE": "/nonexistent/key"}, "SECRET_KEY_FILE"),
        ({"DEBUG": "1", "TINYSTACKS_ALLOW_SANDBOX": "sometimes"}, "TINYSTACKS_ALLOW_SANDBOX"),
        ({"DEBUG": "1", "TINYSTACKS_TRUSTED_PROXIES": "-1"}, "TINYSTACKS_TRUSTED_PROXIES"),
        ({"DEBUG": "1", "TINYSTACKS_SIGNIN_FAILURE_LIMIT": "5x"}, "SIGNIN_FAILURE_LIMIT"),
    ],
)
def test_bad_configuration_stops_start_up_with_one_line(
    environment: dict[str, str], variable: str
) -> None:
    result = manage("check", **environment)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Configuration error: ")
    assert variable in lines[0]


def test_check_deploy_is_clean_with_production_values() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x7#kP2vQ9mZr4Lw8Ny1Tb6Hc3Jd5Fg0Se-Ua7Vi2Ox9Ql4Mn8Kp1Rz",
        ALLOWED_HOSTS="example.com",
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("environment", "allowed"),
    [
        ({"DEBUG": "1"}, "True"),
        ({"DEBUG": "0"}, "False"),
        ({"DEBUG": "0", "TINYSTACKS_ALLOW_SANDBOX": "1"}, "True"),
    ],
)
def test_sandbox_accounts_are_allowed_with_debug_unless_the_operator_says(
    environment: dict[str, str], allowed: str
) -> None:
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.TINYSTACKS_ALLOW_SANDBOX)",
        SECRET_KEY="x7#kP2vQ9mZr4Lw8Ny1Tb6Hc3Jd5Fg0Se-Ua7Vi2Ox9Ql4Mn8Kp1Rz",
        **environment,
    )

    assert result.stdout.strip() == allowed, result.stderr


def test_secret_key_is_generated_once_for_local_use(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"

    first = env.secret_key(debug=True, local_file=key_file)
    second = env.secret_key(debug=True, local_file=key_file)

    assert first == second
    assert len(first) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_secret_key_file_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_text("from-a-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))

    assert env.secret_key(debug=False, local_file=tmp_path / "unused") == "from-a-file"


def test_sqlite_is_the_default_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)

    config = env.env_database("DATABASE_URL", default_sqlite=tmp_path / "db.sqlite3")

    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "db.sqlite3")


@pytest.mark.parametrize("word", ["yes", "On", "TRUE", "1"])
def test_bool_words(word: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", word)
    assert env.env_bool("FLAG", default=False) is True


def test_poll_seconds_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYSTACKS_POLL_SECONDS", "0")
    with pytest.raises(ImproperlyConfigured, match="TINYSTACKS_POLL_SECONDS"):
        env.env_float("TINYSTACKS_POLL_SECONDS", default=5.0, minimum=0.1)
