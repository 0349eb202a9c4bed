"""Who we are in a customer account: the check behind "verify this connection"."""

from __future__ import annotations

from deployments.aws.clients import AccountAccess, client


def caller_identity(access: AccountAccess) -> str:
    """The ARN the dashboard acts as in the account; raises botocore errors when it cannot."""
    return str(client(access, "sts").get_caller_identity()["Arn"])
