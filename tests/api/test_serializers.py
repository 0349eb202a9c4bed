"""The error shape for refusals the endpoints rarely meet: services' errors and lost races."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from deployments import services
from deployments.api.errors import validation_error_response
from tests.api.conftest import Api


def body(response: Any) -> Any:
    return json.loads(response.content)


def test_errors_keyed_by_field_are_400_with_non_field_errors_as_the_sentence() -> None:
    error = ValidationError({"__all__": ["Instances must be ordered."], "name": ["Too long."]})

    response = validation_error_response(error)

    assert response.status_code == 400
    assert body(response) == {
        "error": "Instances must be ordered.",
        "fields": {"name": ["Too long."]},
    }


def test_field_errors_alone_get_a_sentence_naming_the_fields() -> None:
    response = validation_error_response(ValidationError({"region": ["Bad."], "name": ["Bad."]}))

    assert body(response) == {
        "error": "Invalid value(s) for: region, name.",
        "fields": {"region": ["Bad."], "name": ["Bad."]},
    }


def test_a_bare_message_is_a_409_state_conflict() -> None:
    response = validation_error_response(ValidationError("Cluster web is provisioning."))

    assert response.status_code == 409
    assert body(response) == {"error": "Cluster web is provisioning."}


@pytest.mark.django_db
def test_a_lost_race_for_a_name_is_409_not_500(
    api: Api, deployer_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def create_concurrently(**kwargs: Any) -> Any:
        raise IntegrityError("UNIQUE constraint failed: account_name_unique_per_team")

    monkeypatch.setattr(services, "account_create", create_concurrently)

    response = api("POST", "/accounts", deployer_token, {"name": "prod", "mode": "sandbox"})

    assert response.status_code == 409
    assert response.json() == {"error": "That conflicts with an existing object of that name."}
