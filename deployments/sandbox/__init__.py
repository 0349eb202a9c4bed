"""Local sandbox (simulated AWS): moto's AWS APIs, with a simulator that makes its ECS act like ECS.

moto answers the AWS APIs the product calls but never advances an ECS rollout. This package patches
the few places where moto's ECS and Auto Scaling differ from AWS in ways the dashboard depends on
(`patches`), and runs a simulator against moto's in-memory backends (`simulator`): a rolling-update
controller, a fake ECS agent (`agent`), task placement (`placement`), container secrets fetched
with the execution role (`secrets`), failure injection and the circuit breaker, target-tracking
autoscaling on simulated CPU (`autoscaling`), capacity providers' lifecycle (`capacity_providers`)
and ECS cluster auto scaling (`managed_scaling`). `server` serves
it all over HTTP for `manage.py sandbox`; tests call `Simulator.tick()` directly under `mock_aws`.

This is the only package outside the tests that imports moto, and it is written against one exact
moto version: its patches reach into moto's internals.
"""

from __future__ import annotations

import moto

LABEL = "Local sandbox (simulated AWS)"
MOTO_VERSION = "5.2.5"


class SandboxVersionError(RuntimeError):
    pass


def check_moto_version(installed: str = moto.__version__) -> None:
    """Refuse to run against a moto the patches were not written for."""
    if installed != MOTO_VERSION:
        raise SandboxVersionError(
            f"The {LABEL} is written against moto {MOTO_VERSION} but moto {installed} is "
            f"installed; install the pinned version: pip install 'moto[server]=={MOTO_VERSION}'."
        )


check_moto_version()
