"""Judging a deployment from DescribeServices, including rollbacks that end between two reads."""

from __future__ import annotations

from datetime import UTC, datetime

from deployments.aws.rollouts import EcsDeployment, EcsEvent, ServiceView, assess

OURS, GOOD = "ecs-svc/1111111111111111111", "ecs-svc/2222222222222222222"
NEW_TD, OLD_TD = "arn:aws:ecs:us-east-1:1:task-definition/web:2", "arn:aws:ecs:…/web:1"


def deployment(
    id_: str, task_definition: str, state: str, status: str = "PRIMARY"
) -> EcsDeployment:
    return EcsDeployment(id_, status, task_definition, state, "", 2, 2, 0, 0)


def event(message: str) -> EcsEvent:
    return EcsEvent(message, datetime.now(UTC), message)


def test_a_rollback_that_finished_between_two_reads_is_still_a_rollback() -> None:
    after = ServiceView(
        "web",
        [deployment(GOOD, OLD_TD, "COMPLETED")],
        [event(f"(service web) (deployment {OURS}) deployment failed: tasks failed to start.")],
    )

    verdict = assess(after, OURS, NEW_TD, last_rollout_state="IN_PROGRESS")

    assert verdict.outcome == "rolled_back"
    assert "web:1" in verdict.reason


def test_a_deployment_replaced_by_someone_elses_is_failed_not_rolled_back() -> None:
    after = ServiceView("web", [deployment(GOOD, OLD_TD, "IN_PROGRESS")], [])

    verdict = assess(after, OURS, NEW_TD, last_rollout_state="IN_PROGRESS")

    assert verdict.outcome == "failed"


def test_completed_with_every_task_running_is_success() -> None:
    view = ServiceView("web", [deployment(OURS, NEW_TD, "COMPLETED")])

    assert assess(view, OURS, NEW_TD, last_rollout_state="IN_PROGRESS").outcome == "succeeded"
