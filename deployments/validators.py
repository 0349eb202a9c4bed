"""Input rules checked before anything reaches AWS: image references, environment variables and
secrets."""

from __future__ import annotations

import json
import re

from django.core.exceptions import ValidationError

# The grammar of github.com/distribution/reference: [registry[:port]/]path[:tag][@digest].
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
MAX_IMAGE_NAME = 255

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV_PREFIXES = ("AWS_", "ECS_")
# A task definition may be at most 64 KiB; leave room for everything that is not env vars.
MAX_ENV_BYTES = 48 * 1024
# A secret becomes an SSM parameter: a standard-tier value holds at most 4 KB; its name goes into
# the parameter's path, which is limited too.
MAX_SECRET_BYTES = 4096
MAX_SECRET_NAME = 255


def validate_image(image: str) -> None:
    """Raise ValidationError unless `image` is a reference Docker and ECS would accept."""
    match = IMAGE_REFERENCE.fullmatch(image)
    if not match:
        raise ValidationError(
            f"{image!r} is not an image reference; expected e.g. nginx:1.27, "
            "ghcr.io/acme/web:2.3.1 or 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:…",
            code="image",
        )
    name = (match["domain"] + "/" if match["domain"] else "") + match["path"]
    if len(name) > MAX_IMAGE_NAME:
        raise ValidationError(
            f"The image name is {len(name)} characters; at most {MAX_IMAGE_NAME} are allowed.",
            code="image",
        )


def validate_config_vars(config_vars: object) -> None:
    """Names as POSIX shells accept them, none reserved for AWS/ECS, within the size limit."""
    if not isinstance(config_vars, dict):
        raise ValidationError("Config vars must be a mapping of names to values.", code="config")
    for name, value in config_vars.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise ValidationError(
                f"{name!r} is not a valid variable name: use letters, digits and underscores, "
                "not starting with a digit.",
                code="config",
            )
        if name.upper().startswith(RESERVED_ENV_PREFIXES):
            raise ValidationError(
                f"{name} uses a prefix reserved by AWS and ECS (AWS_, ECS_).", code="config"
            )
        if not isinstance(value, str):
            raise ValidationError(f"The value of {name} must be text.", code="config")
    size = len(json.dumps(config_vars).encode())
    if size > MAX_ENV_BYTES:
        raise ValidationError(
            f"Config vars take {size} bytes; at most {MAX_ENV_BYTES} fit in a task definition.",
            code="config",
        )


def validate_secret(name: str, value: str) -> None:
    """The name as for config vars; a value SSM Parameter Store can hold as a SecureString.

    Errors are keyed "name" or "value" and never quote the value.
    """
    if len(name) > MAX_SECRET_NAME:
        raise ValidationError({"name": f"A secret's name is at most {MAX_SECRET_NAME} characters."})
    try:
        validate_config_vars({name: ""})
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None
    problem = _secret_value_problem(name, value)
    if problem:
        raise ValidationError({"value": problem})


def _secret_value_problem(name: str, value: str) -> str | None:
    if not value:
        return f"Enter a value for {name}; SSM Parameter Store cannot hold an empty one."
    if "\x00" in value:
        return f"The value of {name} contains a null character, which is not allowed."
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return f"The value of {name} is not valid Unicode text."
    if size > MAX_SECRET_BYTES:
        return f"The value of {name} is {size} bytes; at most {MAX_SECRET_BYTES} fit in SSM."
    return None
