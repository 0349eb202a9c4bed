"""Which AWS resources are ours. Anything in the account can hold a name we would use; only what
we made carries our tags. Every lookup by name checks them before a resource is adopted,
changed or deleted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CLUSTER_TAG = "tinystacks:cluster"
TEAM_TAG = "tinystacks:team"
APP_TAG = "tinystacks:app"
APP_ID_TAG = "tinystacks:app-id"


class NotOurs(Exception):
    """A resource under the name we would give ours that is not ours."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"{kind} {name} exists in this account but belongs to something else (it does not "
            "carry this TinyStacks object's tags); TinyStacks will not use, change or delete it."
        )


def tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Tags as a dict, from either AWS shape: [{"Key", "Value"}] (EC2, IAM, Auto Scaling) or
    [{"key", "value"}] (ECS)."""
    return {
        str(tag.get("Key", tag.get("key"))): str(tag.get("Value", tag.get("value", "")))
        for tag in tags or []
    }


def is_ours(tags: Mapping[str, str], owner: Mapping[str, str]) -> bool:
    """Every owner tag matches. An app's resources are known by its id; those made before apps
    had one carry only the team and the app's name."""
    if APP_ID_TAG in owner:
        drop = APP_TAG if APP_ID_TAG in tags else APP_ID_TAG
        owner = {key: value for key, value in owner.items() if key != drop}
    return all(tags.get(key) == value for key, value in owner.items())


def first_ours(
    kind: str, name: str, found: Sequence[Mapping[str, Any]], owner: Mapping[str, str]
) -> dict[str, Any] | None:
    """The first resource `found` by looking `name` up, or None when there is none; NotOurs
    unless it carries `owner`'s tags."""
    if not found:
        return None
    resource = dict(found[0])
    if not is_ours(tag_map(resource.get("Tags", resource.get("tags"))), owner):
        raise NotOurs(kind, name)
    return resource
