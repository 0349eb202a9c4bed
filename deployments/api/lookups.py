"""Path parameters that are the team's objects: /clusters/{name} and /apps/{name} stand for the
team's cluster or app of that name, looked up before the body is read so that another team's
object is a 404 whatever the body says. Other teams' objects are reported as absent."""

from __future__ import annotations

from typing import Annotated, Any

from django.core.exceptions import ValidationError
from pydantic import PlainValidator, ValidationInfo, WithJsonSchema

from deployments import selectors
from deployments.api.errors import ApiError
from deployments.api.schemas import NAME
from deployments.models import App, Cluster, Team, name_validator


def _team(info: ValidationInfo) -> Team:
    assert info.context is not None  # django-ninja validates parameters with the request
    team: Team = info.context["request"].team
    return team


def _is_name(name: Any) -> bool:
    """A name no object can have is not looked up."""
    try:
        name_validator(name)
    except ValidationError:
        return False
    return True


def _cluster_of_team(name: Any, info: ValidationInfo) -> Cluster:
    """The team's live cluster of that name."""
    cluster = (
        selectors.clusters_of(_team(info)).filter(name=name).first() if _is_name(name) else None
    )
    if cluster is None:
        raise ApiError(404, f"This team has no cluster named {name}.")
    return cluster


def _app_of_team(name: Any, info: ValidationInfo) -> App:
    """The team's app of that name, with the annotations the App schema shows."""
    app = selectors.app_with_status(_team(info), name) if _is_name(name) else None
    if app is None:
        raise ApiError(404, f"This team has no app named {name}.")
    return app


TeamCluster = Annotated[
    Cluster,
    PlainValidator(_cluster_of_team),
    WithJsonSchema({"type": "string", **NAME, "description": "The cluster's name."}),
]
TeamApp = Annotated[
    App,
    PlainValidator(_app_of_team),
    WithJsonSchema({"type": "string", **NAME, "description": "The app's name."}),
]
