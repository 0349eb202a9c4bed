"""Turn boto errors into one sentence a user can act on."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from deployments.aws.ownership import NotOurs


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
