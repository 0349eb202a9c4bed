"""SSM Parameter Store: where secret config vars live for ECS to read, as SecureStrings."""

from __future__ import annotations

from deployments.aws.clients import AccountAccess, client


def put_secure(access: AccountAccess, name: str, value: str) -> None:
    """Create or overwrite a SecureString parameter (idempotent: a re-run writes the same)."""
    client(access, "ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def delete_under(access: AccountAccess, path: str) -> int:
    """Delete every parameter under `path` (app teardown); how many there were."""
    ssm = client(access, "ssm")
    names = [
        parameter["Name"]
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
        for parameter in page["Parameters"]
    ]
    for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names
        ssm.delete_parameters(Names=names[start : start + 10])
    return len(names)
