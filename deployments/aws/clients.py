"""Every boto3 client is built here, for one of three ways of reaching an AWS account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from django.conf import settings

SANDBOX = "sandbox"
ASSUME_ROLE = "assume_role"
AMBIENT = "ambient"

# standard mode: 3 attempts, backoff capped at 20 s, a retry quota; explicit timeouts so a hung
# endpoint costs a job seconds, not the worker.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=30,
)
CREDENTIAL_REFRESH_MARGIN_SECONDS = 300


class SandboxNotAllowed(BotoCoreError):
    """Raised before any call: this server does not reach sandbox accounts. A BotoCoreError, so
    that every caller handles it as an AWS it cannot reach, and says why."""

    fmt = "the local sandbox is turned off on this server (TINYSTACKS_ALLOW_SANDBOX)"


@dataclass(frozen=True)
class AccountAccess:
    """How to reach one customer account: plain values copied from an AwsAccount row."""

    mode: str
    region: str
    role_arn: str = ""
    external_id: str = ""
    session_name: str = "tinystacks"


# botocore event handlers put on every client made: call counting, fault injection in tests.
_client_hooks: list[tuple[str, Callable[..., Any]]] = []


def add_client_hook(event: str, handler: Callable[..., Any]) -> Callable[[], None]:
    """Run `handler` on botocore `event` for every client made from now on; returns the remover."""
    hook = (event, handler)
    _client_hooks.append(hook)
    return lambda: _client_hooks.remove(hook)


_role_sessions: dict[tuple[str, str, str], tuple[boto3.Session, float]] = {}
_role_sessions_lock = threading.Lock()


def client(access: AccountAccess, service: str, region: str | None = None) -> Any:
    """A boto3 client for `service` in the account `access` names, in `region` (the account's
    default region when None)."""
    region_name = region or access.region
    session = boto3.Session() if access.mode == AMBIENT else _assumed_role_session(access)
    made = session.client(  # type: ignore[call-overload]
        service, region_name=region_name, config=CLIENT_CONFIG, **_endpoint(access)
    )
    return _with_hooks(made)


def _endpoint(access: AccountAccess) -> dict[str, str]:
    if access.mode != SANDBOX:
        return {}
    if not settings.TINYSTACKS_ALLOW_SANDBOX:
        raise SandboxNotAllowed()
    return {"endpoint_url": settings.TINYSTACKS_SANDBOX_URL}


def dashboard_client(access: AccountAccess, service: str) -> Any:
    """A client with the dashboard's own credentials: for a sandbox account, the sandbox's
    administrator (who plays the customer creating our role); else the default chain."""
    if access.mode == SANDBOX:
        credentials = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
    else:
        credentials = {}
    made = boto3.client(  # type: ignore[call-overload]
        service,
        region_name=access.region,
        config=CLIENT_CONFIG,
        **_endpoint(access),
        **credentials,
    )
    return _with_hooks(made)


def _with_hooks(made: Any) -> Any:
    for event, handler in _client_hooks:
        made.meta.events.register_first(event, handler)
    return made


def forget_role_sessions() -> None:
    """Drop cached role sessions (a reset sandbox no longer knows their credentials)."""
    with _role_sessions_lock:
        _role_sessions.clear()


def _assumed_role_session(access: AccountAccess) -> boto3.Session:
    """A session on the customer's role, cached until shortly before its credentials expire."""
    key = (access.mode, access.role_arn, access.external_id)
    with _role_sessions_lock:
        cached = _role_sessions.get(key)
        if cached and cached[1] - CREDENTIAL_REFRESH_MARGIN_SECONDS > time.time():
            return cached[0]
        credentials = dashboard_client(access, "sts").assume_role(
            RoleArn=access.role_arn,
            RoleSessionName=access.session_name[:64],
            ExternalId=access.external_id,
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        _role_sessions[key] = (session, credentials["Expiration"].timestamp())
        return session
