"""EC2 instances take a few ticks to terminate, as on AWS, where `shutting-down` lasts a minute or
so and the instance keeps its network interface (so its subnet and security groups stay in use)
until it is `terminated`.

moto terminates an instance the moment it is asked to.
"""

from __future__ import annotations

from collections.abc import Callable

from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import Instance, InstanceState

SHUTDOWN_TICKS = 3
_TICKS_LEFT = "_tinystacks_shutdown_ticks"
_terminate_now: Callable[[Instance], InstanceState] = Instance.terminate


def apply() -> None:
    def terminate(self: Instance) -> InstanceState:
        """Start shutting down; `step` finishes the termination a few ticks later."""
        previous = InstanceState(self._state.name, self._state.code)
        if self._state.name not in ("shutting-down", "terminated"):
            self._state.name, self._state.code = "shutting-down", 32
            vars(self)[_TICKS_LEFT] = SHUTDOWN_TICKS
        return previous

    Instance.terminate = terminate  # type: ignore[method-assign]


def step() -> None:
    """One tick of every instance that is shutting down, in every account and region."""
    for account in list(ec2_backends.values()):
        for backend in list(account.values()):
            for instance in backend.all_instances():
                ticks_left = vars(instance).get(_TICKS_LEFT)
                if ticks_left is None:
                    continue
                if ticks_left > 1:
                    vars(instance)[_TICKS_LEFT] = ticks_left - 1
                else:
                    del vars(instance)[_TICKS_LEFT]
                    _terminate_now(instance)
