from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from deployments.models import (
    App,
    api_token_name_validator,
    name_validator,
    region_validator,
    role_arn_validator,
)
from deployments.validators import validate_config_vars, validate_image, validate_secret


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "nginx:crashloop",
        "library/nginx:1.27-alpine",
        "ghcr.io/acme/web:2.3.1",
        "localhost:5000/web",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:v1",
        "nginx@sha256:" + "a" * 64,
        "nginx:1.27@sha256:" + "b" * 64,
    ],
)
def test_valid_images(image: str) -> None:
    validate_image(image)


@pytest.mark.parametrize(
    "image",
    [
        "",
        "Nginx:1.27",
        "nginx:",
        "nginx:-bad",
        "nginx::1",
        "nginx:1.27 ; rm -rf /",
        "<script>alert(1)</script>",
        "nginx@sha256:short",
        "a" * 300,
        "nginx:" + "t" * 200,
        "ghcr.io//web",
    ],
)
def test_invalid_images(image: str) -> None:
    with pytest.raises(ValidationError):
        validate_image(image)


def test_config_vars_rules() -> None:
    validate_config_vars({"DATABASE_URL": "postgres://db", "_X1": ""})
    for bad in ({"1ABC": "x"}, {"AWS_REGION": "x"}, {"ecs_thing": "x"}, {"A-B": "x"}, {"A": 1}):
        with pytest.raises(ValidationError):
            validate_config_vars(bad)
    with pytest.raises(ValidationError, match="bytes"):
        validate_config_vars({f"V{i}": "x" * 1000 for i in range(60)})


@pytest.mark.parametrize(
    ("name", "value", "field", "message"),
    [
        ("1ABC", "v4lue", "name", "'1ABC' is not a valid variable name"),
        ("AWS_KEY", "v4lue", "name", "prefix reserved by AWS and ECS"),
        ("N" * 256, "v4lue", "name", "at most 255 characters"),
        ("API_KEY", "", "value", "Enter a value for API_KEY"),
        ("API_KEY", "v4lue\x00", "value", "contains a null character"),
        ("API_KEY", "v4lue\ud800", "value", "is not valid Unicode text"),
        ("API_KEY", "€" * 1366, "value", "4098 bytes; at most 4096"),
    ],
)
def test_secret_rules_key_their_errors_and_never_quote_the_value(
    name: str, value: str, field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_secret(name, value)

    assert list(refused.value.message_dict) == [field]
    assert message in refused.value.message_dict[field][0]
    assert "v4lue" not in str(refused.value)


def test_a_secret_may_fill_an_ssm_parameter() -> None:
    validate_secret("API_KEY", "€" * 1365 + "x")  # 4096 bytes


NAMED = [
    (name_validator, "web"),  # apps, clusters and AWS accounts
    (region_validator, "eu-west-1"),
    (role_arn_validator, "arn:aws:iam::123456789012:role/TinyStacksAccess"),
    (api_token_name_validator, "github-actions"),
    (validate_slug, "acme"),  # teams
    (App._meta.get_field("health_check_path").run_validators, "/healthz"),
    (validate_image, "nginx:1.27"),
    (lambda name: validate_config_vars({name: "x"}), "DATABASE_URL"),
    (lambda name: validate_secret(name, "x"), "API_KEY"),
]


@pytest.mark.parametrize(("validate", "value"), NAMED)
def test_a_trailing_newline_is_refused(validate: Callable[[str], None], value: str) -> None:
    validate(value)
    with pytest.raises(ValidationError):
        validate(f"{value}\n")
