"""IAM is eventually consistent: a new instance profile is not usable for a few seconds.

AWS answers a RunInstances or CreateAutoScalingGroup naming an instance profile that has not yet
propagated (or does not exist) as if the name were wrong: "Invalid IAM Instance Profile name" (or
ARN). CreateLaunchTemplate does not validate its parameters, so it accepts such a profile; the
group that launches from the template is refused instead.

The delay is measured on `CLOCK`, a wall clock that tests move forward instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.responses.instances import InstanceResponse
from moto.iam.models import IAMBackend, InstanceProfile, iam_backends

DEFAULT_SECONDS = 3.0
_USABLE_AT = "_tinystacks_usable_at"


class Clock:
    """Seconds on a monotonic clock, plus however far tests have moved it forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


CLOCK = Clock()


class Settings:
    seconds = DEFAULT_SECONDS  # how long a new (or newly filled) instance profile stays unusable


settings = Settings()


def apply() -> None:
    _patch_instance_profiles()
    _patch_run_instances()
    _patch_create_auto_scaling_group()


def _mark_new(profile: InstanceProfile) -> None:
    vars(profile)[_USABLE_AT] = CLOCK.now() + settings.seconds


def _usable(profile: InstanceProfile) -> bool:
    usable_at: float = vars(profile).get(_USABLE_AT, 0.0)
    return CLOCK.now() >= usable_at


def _patch_instance_profiles() -> None:
    original_create = IAMBackend.create_instance_profile
    original_add_role = IAMBackend.add_role_to_instance_profile

    def create_instance_profile(self: IAMBackend, *args: Any, **kwargs: Any) -> InstanceProfile:
        profile = original_create(self, *args, **kwargs)
        _mark_new(profile)
        return profile

    def add_role_to_instance_profile(self: IAMBackend, profile_name: str, role_name: str) -> None:
        original_add_role(self, profile_name, role_name)
        _mark_new(self.get_instance_profile(profile_name))

    IAMBackend.create_instance_profile = create_instance_profile  # type: ignore[method-assign]
    IAMBackend.add_role_to_instance_profile = add_role_to_instance_profile  # type: ignore[method-assign]


def refusal(account_id: str, profile: dict[str, Any]) -> str | None:
    """AWS's complaint about an `IamInstanceProfile` ({"Arn": …} or {"Name": …}), if any."""
    by_arn = bool(profile.get("Arn"))
    value = str(profile.get("Arn") or profile.get("Name") or "")
    if not value:
        return None
    name = value.rsplit("/", 1)[-1]
    found = [
        candidate
        for candidate in iam_backends[account_id]["aws"].instance_profiles.values()
        if (candidate.arn == value if by_arn else candidate.name == name)
    ]
    if found and _usable(found[0]):
        return None
    field, kind = ("arn", "ARN") if by_arn else ("name", "name")
    return (
        f"Value ({value}) for parameter iamInstanceProfile.{field} is invalid. "
        f"Invalid IAM Instance Profile {kind}"
    )


def _patch_run_instances() -> None:
    original = InstanceResponse.run_instances

    def run_instances(self: InstanceResponse) -> ActionResult:
        profile = {
            "Arn": self._get_param("IamInstanceProfile.Arn"),
            "Name": self._get_param("IamInstanceProfile.Name"),
        }
        problem = refusal(self.current_account, profile)
        if problem:
            raise EC2ClientError("InvalidParameterValue", problem)
        return original(self)

    InstanceResponse.run_instances = run_instances  # type: ignore[method-assign]


def launch_template_data(
    account_id: str, region: str, template: dict[str, Any]
) -> dict[str, Any] | None:
    """The data of the version a `LaunchTemplate` specification ({LaunchTemplateId or
    LaunchTemplateName, Version}) names; None when there is no such template."""
    ec2 = ec2_backends[account_id][region]
    key = str(template.get("LaunchTemplateId") or template.get("LaunchTemplateName") or "")
    found = ec2.launch_templates.get(key) or next(
        (t for t in ec2.launch_templates.values() if t.name == key), None
    )
    if found is None:
        return None
    data: dict[str, Any] = found.get_version(template.get("Version") or "$Default").data
    return data


def _patch_create_auto_scaling_group() -> None:
    original = AutoScalingResponse.create_auto_scaling_group

    def create_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
        data = launch_template_data(
            self.current_account, self.region, self._get_param("LaunchTemplate", {}) or {}
        )
        problem = refusal(self.current_account, (data or {}).get("IamInstanceProfile") or {})
        if problem:
            raise ValidationError(f"You must use a valid fully-formed launch template. {problem}")
        return original(self)

    AutoScalingResponse.create_auto_scaling_group = create_auto_scaling_group  # type: ignore[method-assign]
