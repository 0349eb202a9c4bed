"""Turn boto errors into one sentence a user can act on."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from deployments.aws.ownership import NotOurs

# What an AWS call raises when AWS refuses it or cannot be reached: callers outside `aws/` catch
# these without importing botocore.
AWS_ERRORS = (ClientError, BotoCoreError)
CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
                     ConnectionClosedError)  # fmt: skip
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


def is_transient(error: Exception) -> bool:
    """Throttled or unreachable even after botocore's own retries: worth trying again later."""
    if isinstance(error, CONNECTION_ERRORS):
        return True
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in THROTTLING_CODES or status == 429


def describe_aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "Error")
        operation = error.operation_name
        return f"AWS refused {operation}: {code}: {details.get('Message', '').strip()}".rstrip(": ")
    if isinstance(error, EndpointConnectionError):
        return f"Could not reach AWS at {error.kwargs.get('endpoint_url', 'its endpoint')}."
    if isinstance(error, NotOurs):
        return str(error)
    if isinstance(error, BotoCoreError):
        return f"AWS call failed: {error}"
    return f"{type(error).__name__}: {error}"
