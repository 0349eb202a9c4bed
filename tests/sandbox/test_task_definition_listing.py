"""ListTaskDefinitions as ECS answers it: filtered by family and status, sorted by family then
revision number (DESC reverses both), paged with maxResults and an opaque nextToken."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import Clients, register_task_definition


@pytest.fixture
def ecs(clients: Clients, sim: Simulator) -> Any:
    return clients.ecs  # the simulator has patched moto


def revisions(arns: list[str]) -> list[str]:
    return [arn.split("/")[-1] for arn in arns]


def register(ecs: Any, family: str, count: int) -> None:
    for n in range(count):
        register_task_definition(ecs, family=family, image=f"nginx:1.{n}")


def test_desc_with_max_results_one_returns_the_newest_revision(ecs: Any) -> None:
    register(ecs, "web", 3)

    page = ecs.list_task_definitions(familyPrefix="web", sort="DESC", maxResults=1)

    assert revisions(page["taskDefinitionArns"]) == ["web:3"]
    assert page["nextToken"]


def test_asc_pages_of_two_return_every_revision_in_order(ecs: Any) -> None:
    register(ecs, "web", 5)

    pages = []
    kwargs: dict[str, Any] = {"familyPrefix": "web", "sort": "ASC", "maxResults": 2}
    while True:
        page = ecs.list_task_definitions(**kwargs)
        pages.append(revisions(page["taskDefinitionArns"]))
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]

    assert pages == [["web:1", "web:2"], ["web:3", "web:4"], ["web:5"]]
    paginated = ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix="web", PaginationConfig={"PageSize": 2}
    )
    assert [arn for page in paginated for arn in revisions(page["taskDefinitionArns"])] == [
        f"web:{n}" for n in range(1, 6)
    ]


def test_families_sort_by_name_and_revisions_by_number(ecs: Any) -> None:
    register(ecs, "web", 11)
    register(ecs, "api", 2)

    ascending = ecs.list_task_definitions()["taskDefinitionArns"]
    descending = ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"]

    expected = ["api:1", "api:2", *(f"web:{n}" for n in range(1, 12))]
    assert revisions(ascending) == expected
    assert revisions(descending) == expected[::-1]


def test_a_revision_registered_between_pages_moves_no_other_revision(ecs: Any) -> None:
    register(ecs, "web", 3)
    first = ecs.list_task_definitions(familyPrefix="web", sort="DESC", maxResults=1)

    register(ecs, "web", 1)
    rest = ecs.list_task_definitions(
        familyPrefix="web", sort="DESC", maxResults=10, nextToken=first["nextToken"]
    )

    assert revisions(rest["taskDefinitionArns"]) == ["web:2", "web:1"]
    assert "nextToken" not in rest


def test_the_status_filter_defaults_to_active(ecs: Any) -> None:
    register(ecs, "web", 3)
    ecs.deregister_task_definition(taskDefinition="web:2")

    active = ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]
    inactive = ecs.list_task_definitions(familyPrefix="web", status="INACTIVE")[
        "taskDefinitionArns"
    ]

    assert revisions(active) == ["web:1", "web:3"]
    assert revisions(inactive) == ["web:2"]


def test_family_prefix_is_the_full_family_name(ecs: Any) -> None:
    register(ecs, "web", 2)
    register(ecs, "web-worker", 1)
    register(ecs, "api", 1)

    listed = ecs.list_task_definitions(familyPrefix="web", sort="DESC")["taskDefinitionArns"]

    assert revisions(listed) == ["web:2", "web:1"]


@pytest.mark.parametrize("max_results", [0, 101])
def test_max_results_outside_1_to_100_is_refused(ecs: Any, max_results: int) -> None:
    register(ecs, "web", 1)

    with pytest.raises(ClientError) as error:
        ecs.list_task_definitions(familyPrefix="web", maxResults=max_results)

    assert error.value.response["Error"]["Code"] == "InvalidParameterException"


def test_a_token_ecs_did_not_hand_out_is_refused(ecs: Any) -> None:
    register(ecs, "web", 1)

    with pytest.raises(ClientError) as error:
        ecs.list_task_definitions(familyPrefix="web", nextToken="not-a-token")

    assert error.value.response["Error"]["Code"] == "InvalidParameterException"
