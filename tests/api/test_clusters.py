"""/api/v1/clusters: list, create (provisioning queued), show, resize (PATCH) and tear down."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.models import AuditEntry, AwsAccount, Cluster, Job, Team
from tests import factories
from tests.api.conftest import Api, row_counts

pytestmark = pytest.mark.django_db

CLUSTER_FIELDS = {
    "name", "account", "region", "instance_type", "min_instances", "desired_instances",
    "max_instances", "status", "status_reason", "steps", "resources", "capacity", "created_at",
    "updated_at",
}  # fmt: skip


@pytest.fixture
def account(team: Team) -> AwsAccount:
    return factories.make_account(team, name="main", region="eu-west-1")


@pytest.fixture
def ready(account: AwsAccount) -> Cluster:
    """A provisioned cluster of 2/2/4 t3.medium instances."""
    return factories.make_cluster(
        account,
        name="web",
        status=Cluster.Status.READY,
        steps=[{"name": "vpc", "status": "done", "error": None}],
        resources={"vpc_id": "vpc-0abc", "cluster_arn": "arn:aws:ecs:eu-west-1:1:cluster/x"},
    )


def jobs_of(cluster: Cluster) -> list[str]:
    return list(Job.objects.filter(target_id=cluster.pk).values_list("kind", flat=True))


def test_lists_the_teams_live_clusters(
    api: Api, account: AwsAccount, ready: Cluster, other_team: Team, viewer_token: str
) -> None:
    factories.make_cluster(account, name="gone", status=Cluster.Status.DELETED)
    factories.make_cluster(account, name="coming", status=Cluster.Status.PROVISIONING)
    factories.make_cluster(factories.make_account(other_team), name="theirs")

    response = api("GET", "/clusters", viewer_token)

    assert response.status_code == 200
    clusters = response.json()
    assert [(c["name"], c["status"]) for c in clusters] == [
        ("coming", "provisioning"),
        ("web", "ready"),
    ]
    assert set(clusters[1]) == CLUSTER_FIELDS
    assert clusters[1]["account"] == "main"
    assert clusters[1]["steps"] == [{"name": "vpc", "status": "done", "error": None}]
    assert clusters[1]["resources"]["vpc_id"] == "vpc-0abc"


def test_showing_a_cluster(api: Api, ready: Cluster, viewer_token: str) -> None:
    response = api("GET", "/clusters/web", viewer_token)

    assert response.status_code == 200
    body = response.json()
    assert body | {"created_at": None, "updated_at": None} == {
        "name": "web",
        "account": "main",
        "region": "eu-west-1",
        "instance_type": "t3.medium",
        "min_instances": 2,
        "desired_instances": 2,
        "max_instances": 4,
        "status": "ready",
        "status_reason": "",
        "steps": [{"name": "vpc", "status": "done", "error": None}],
        "resources": {"vpc_id": "vpc-0abc", "cluster_arn": "arn:aws:ecs:eu-west-1:1:cluster/x"},
        "capacity": {"instances": None, "zones": [], "read_at": None, "error": ""},
        "created_at": None,
        "updated_at": None,
    }


def test_a_cluster_shows_its_live_capacity_once_read(
    api: Api, ready: Cluster, viewer_token: str
) -> None:
    factories.make_capacity(ready, {"eu-west-1a": 2, "eu-west-1b": 1}, tasks_per_instance=2)

    capacity = api("GET", "/clusters/web", viewer_token).json()["capacity"]

    assert capacity["instances"] == 3 and capacity["error"] == ""
    assert capacity["read_at"] is not None
    assert [(z["zone"], z["active"], z["running_tasks"]) for z in capacity["zones"]] == [
        ("eu-west-1a", 2, 4),
        ("eu-west-1b", 1, 2),
    ]


def test_creating_a_cluster_queues_its_provisioning(
    api: Api, team: Team, account: AwsAccount, deployer_token: str
) -> None:
    response = api(
        "POST",
        "/clusters",
        deployer_token,
        {"name": "api", "account": "main", "instance_type": "m6i.large", "min_instances": 1,
         "desired_instances": 3, "max_instances": 6},
    )  # fmt: skip

    assert response.status_code == 201
    assert response["Location"] == "/api/v1/clusters/api"
    body = response.json()
    assert set(body) == CLUSTER_FIELDS
    assert (body["status"], body["steps"], body["resources"]) == ("pending", [], {})
    assert body["region"] == "eu-west-1"  # the account's
    cluster = Cluster.objects.get(team=team, name="api")
    assert (cluster.instance_type, cluster.min_instances, cluster.desired_instances,
            cluster.max_instances) == ("m6i.large", 1, 3, 6)  # fmt: skip
    job = Job.objects.get(kind="provision_cluster")
    assert (job.target, job.status, job.team) == (cluster, Job.Status.QUEUED, team)
    entry = AuditEntry.objects.get(action="cluster.create")
    assert (entry.target_repr, entry.actor, entry.ip_address) == ("acme/api", None, "127.0.0.1")


def test_defaults_apply_to_fields_left_out(
    api: Api, account: AwsAccount, deployer_token: str
) -> None:
    response = api("POST", "/clusters", deployer_token, {"name": "api", "account": "main",
                                                         "region": "us-west-2"})  # fmt: skip

    assert response.status_code == 201
    body = response.json()
    assert (body["region"], body["instance_type"]) == ("us-west-2", "t3.medium")
    assert (body["min_instances"], body["desired_instances"], body["max_instances"]) == (2, 2, 4)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "api", "account": "main", "min_instances": "2"}, "min_instances",
         "Expected an integer, got a string."),
        ({"name": "api", "account": "main", "max_instances": True}, "max_instances",
         "Expected an integer, got a boolean."),
        ({"name": "api", "account": "main", "max_instances": 4.0}, "max_instances",
         "Expected an integer, got a number with a fraction."),
        ({"name": "api", "account": "main", "region": "Mars"}, "region", "AWS region"),
        ({"name": "api", "account": "main", "region": ["eu-west-1"]}, "region",
         "Expected a string, got an array."),
        ({"name": "api", "account": "main", "instance_type": "t2.nano"}, "instance_type",
         "not a valid choice"),
        ({"name": "api", "account": "main", "min_instances": 5, "max_instances": 3},
         "min_instances", "Must be at most desired_instances (2)."),
        ({"name": "api", "account": "main", "desired_instances": 5}, "desired_instances",
         "Must be at most max_instances (4)."),
        ({"name": "api", "account": "main", "min_instances": 3, "max_instances": 8},
         "min_instances", "Must be at most desired_instances (2)."),
        ({"name": "api", "account": "main", "max_instances": 101}, "max_instances",
         "less than or equal to 100"),
        ({"name": "api", "account": "main", "min_instances": -1}, "min_instances",
         "greater than or equal to 0"),
        ({"name": "api", "account": "nope"}, "account", "This team has no AWS account named nope."),
        ({"name": "api", "account": "theirs"}, "account",
         "This team has no AWS account named theirs."),
        ({"name": "API!", "account": "main"}, "name", "lowercase letters"),
        ({"account": "main"}, "name", "This field is required."),
        ({"name": "api"}, "account", "This field is required."),
        ({"name": "api", "account": "main", "status": "ready"}, "status", "read-only"),
        ({"name": "api", "account": "main", "vpc": "vpc-1"}, "vpc", "Unknown field."),
    ],
)  # fmt: skip
def test_invalid_clusters_are_400_by_field_and_write_nothing(
    api: Api,
    account: AwsAccount,
    other_team: Team,
    deployer_token: str,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    factories.make_account(other_team, name="theirs")
    before = row_counts()

    response = api("POST", "/clusters", deployer_token, body)

    assert response.status_code == 400
    errors = response.json()
    assert message in " ".join(errors["fields"][field]), errors
    assert errors["error"]
    assert row_counts() == before


def test_min_above_max_says_so_in_one_sentence_too(
    api: Api, account: AwsAccount, deployer_token: str
) -> None:
    response = api("POST", "/clusters", deployer_token, {"name": "api", "account": "main",
                   "min_instances": 3, "desired_instances": 2, "max_instances": 1})  # fmt: skip

    assert response.status_code == 400
    assert response.json() == {
        "error": "Instances must satisfy min_instances ≤ desired_instances ≤ max_instances.",
        "fields": {
            "min_instances": ["Must be at most desired_instances (2)."],
            "desired_instances": ["Must be at most max_instances (1)."],
        },
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "The request body is not valid JSON: Expecting property name"),
        ('{"name": "api",}', "The request body is not valid JSON"),
        ("", "Send a JSON object in the request body."),
        ("[]", "The request body must be a JSON object, not an array."),
        ('"api"', "The request body must be a JSON object, not a string."),
        ("42", "The request body must be a JSON object, not an integer."),
        ("null", "The request body must be a JSON object, not null."),
        (
            '{"name": "api", "account": "main", "min_instances": NaN}',
            "The request body is not valid JSON: NaN is not a JSON value.",
        ),
        (b"\xff\xfe{}", "The request body is not valid JSON"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(
    api: Api, account: AwsAccount, deployer_token: str, raw: str | bytes, message: str
) -> None:
    before = row_counts()

    response = api("POST", "/clusters", deployer_token, raw=raw)

    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert "fields" not in response.json()
    assert row_counts() == before


def test_a_live_name_is_409_but_a_deleted_ones_is_free(
    api: Api, account: AwsAccount, ready: Cluster, deployer_token: str
) -> None:
    factories.make_cluster(account, name="old", status=Cluster.Status.DELETED)
    before = row_counts()

    taken = api("POST", "/clusters", deployer_token, {"name": "web", "account": "main"})

    assert taken.status_code == 409
    assert taken.json() == {
        "error": "This team already has a cluster named web.",
        "fields": {"name": ["A cluster of this name already exists in this team."]},
    }
    assert row_counts() == before
    reused = api("POST", "/clusters", deployer_token, {"name": "old", "account": "main"})
    assert reused.status_code == 201


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"desired_instances": 3}), ("DELETE", None)]
)
def test_other_teams_clusters_are_404(
    api: Api, ready: Cluster, outsider_token: str, method: str, body: Any
) -> None:
    before = row_counts()

    response = api(method, "/clusters/web", outsider_token, body)

    assert response.status_code == 404
    assert response.json() == {"error": "This team has no cluster named web."}
    assert row_counts() == before
    ready.refresh_from_db()
    assert (ready.status, ready.desired_instances) == (Cluster.Status.READY, 2)


@pytest.mark.parametrize("name", ["nope", "gone", "WEB", "a%00b", "%3Cscript%3E", "x" * 300])
def test_unknown_and_deleted_names_are_404(
    api: Api, account: AwsAccount, ready: Cluster, deployer_token: str, name: str
) -> None:
    factories.make_cluster(account, name="gone", status=Cluster.Status.DELETED)

    for method, body in [("GET", None), ("PATCH", {"desired_instances": 3}), ("DELETE", None)]:
        response = api(method, f"/clusters/{name}", deployer_token, body)

        assert response.status_code == 404
        assert set(response.json()) == {"error"}


def test_scaling_a_ready_cluster_queues_the_change(
    api: Api, ready: Cluster, deployer_token: str
) -> None:
    changes = {"desired_instances": 3, "max_instances": 6, "instance_type": "t3.large"}
    response = api("PATCH", "/clusters/web", deployer_token, changes)

    assert response.status_code == 202
    body = response.json()
    assert (body["desired_instances"], body["max_instances"], body["instance_type"]) == (
        3, 6, "t3.large"
    )  # fmt: skip
    ready.refresh_from_db()
    assert (ready.min_instances, ready.desired_instances, ready.max_instances) == (2, 3, 6)
    assert jobs_of(ready) == ["scale_cluster"]
    entry = AuditEntry.objects.get(action="cluster.scale")
    assert entry.details["after"]["desired_instances"] == 3
    assert entry.ip_address == "127.0.0.1"


@pytest.mark.parametrize(
    "status", [Cluster.Status.PENDING, Cluster.Status.PROVISIONING, Cluster.Status.FAILED]
)
def test_scaling_a_cluster_that_is_not_ready_is_409(
    api: Api, ready: Cluster, deployer_token: str, status: str
) -> None:
    Cluster.objects.filter(pk=ready.pk).update(status=status)
    before = row_counts()

    response = api("PATCH", "/clusters/web", deployer_token, {"desired_instances": 3})

    assert response.status_code == 409
    assert "it can be resized once it is ready" in response.json()["error"]
    assert row_counts() == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"min_instances": 3}, "min_instances", "Must be at most desired_instances (2)."),
        ({"max_instances": 1}, "max_instances", "Must be at least desired_instances (2)."),
        ({"desired_instances": 5}, "desired_instances", "Must be at most max_instances (4)."),
        ({"desired_instances": "3"}, "desired_instances", "Expected an integer, got a string."),
        ({"max_instances": 10**40}, "max_instances", "less than or equal to 100"),
        ({"instance_type": "t2.nano"}, "instance_type", "not a valid choice"),
        ({"name": "renamed"}, "name", "cannot be changed"),
        ({"region": "us-east-2"}, "region", "cannot be changed"),
        ({"status": "deleted"}, "status", "read-only"),
        ({"desired_count": 3}, "desired_count", "Unknown field."),
    ],
)
def test_invalid_changes_are_400_by_field(
    api: Api, ready: Cluster, deployer_token: str, body: dict[str, Any], field: str, message: str
) -> None:
    before = row_counts()

    response = api("PATCH", "/clusters/web", deployer_token, body)

    assert response.status_code == 400
    assert message in " ".join(response.json()["fields"][field])
    assert row_counts() == before
    ready.refresh_from_db()
    assert (ready.name, ready.status, ready.desired_instances) == ("web", "ready", 2)


def test_an_empty_change_is_400(api: Api, ready: Cluster, deployer_token: str) -> None:
    response = api("PATCH", "/clusters/web", deployer_token, {})

    assert response.status_code == 400
    assert response.json() == {
        "error": "Send at least one of: instance_type, min_instances, desired_instances, "
        "max_instances."
    }


def test_deleting_a_cluster_queues_its_teardown(
    api: Api, ready: Cluster, deployer_token: str
) -> None:
    response = api("DELETE", "/clusters/web", deployer_token)

    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    ready.refresh_from_db()
    assert ready.status == Cluster.Status.DELETING
    assert jobs_of(ready) == ["delete_cluster"]
    assert AuditEntry.objects.get(action="cluster.delete").ip_address == "127.0.0.1"

    again = api("DELETE", "/clusters/web", deployer_token)
    assert again.status_code == 202
    assert jobs_of(ready) == ["delete_cluster"]


def test_deleting_a_cluster_that_runs_apps_is_409_naming_them(
    api: Api, ready: Cluster, deployer_token: str
) -> None:
    factories.make_app(ready, name="storefront")
    before = row_counts()

    response = api("DELETE", "/clusters/web", deployer_token)

    assert response.status_code == 409
    assert response.json() == {
        "error": "Cluster web still runs 1 app(s): storefront. Delete them first."
    }
    assert row_counts() == before
    ready.refresh_from_db()
    assert ready.status == Cluster.Status.READY


def test_deleting_a_cluster_while_it_provisions_is_409(
    api: Api, ready: Cluster, deployer_token: str
) -> None:
    Cluster.objects.filter(pk=ready.pk).update(status=Cluster.Status.PROVISIONING)

    response = api("DELETE", "/clusters/web", deployer_token)

    assert response.status_code == 409
    assert "wait for it to finish" in response.json()["error"]


HOSTILE_BODIES: list[Any] = [
    {"name": "api", "account": "main", "min_instances": 10**30},
    {"name": "api", "account": "main", "max_instances": -(10**30)},
    {"name": "api", "account": "main", "desired_instances": -1},
    {"name": "api", "account": "main", "max_instances": 1e308},
    {"name": {"$gt": ""}, "account": "main"},
    {"name": "api", "account": {"name": "main", "team": "globex"}},
    {"name": "api", "account": ["main"]},
    {"name": "ünïcødé-☃", "account": "main"},
    {"name": "api", "account": "main", "region": "eu-west-1\u202e"},
    {"name": "<script>alert(1)</script>", "account": "<img src=x onerror=alert(1)>"},
    {"name": "api\u0000", "account": "main\u0000"},
    {"name": "a" * 100_000, "account": "main"},
    {"name": "api", "account": "main", "instance_type": "t3.medium'; DROP TABLE x;--"},
    {"name": "api", "account": "main", "min_instances": None, "steps": [{"x": 1}]},
    {"": "", "__proto__": {"admin": True}},
    {"name": "api", "account": "main", "steps": "x" * 1000},
]
HOSTILE_RAW: list[str | bytes] = [
    '{"name": "\\ud800", "account": "main"}',  # a lone surrogate
    '{"name": "api", "account": "main", "max_instances": Infinity}',
    '{"name": "api", "account": "main", "max_instances": 1e999}',
    '{"name": "api", "account": "main", "max_instances": ' + "9" * 5000 + "}",
    "[" * 100_000 + "]" * 100_000,
    '{"a": ' * 50_000 + "1" + "}" * 50_000,
    b"\x00\x01\x02",
    '{"name": "api", "name": "api", "account": "main", "account": 1}',
]


@pytest.mark.parametrize(("method", "path"), [("POST", "/clusters"), ("POST", "/accounts"),
                                              ("PATCH", "/clusters/web")])  # fmt: skip
def test_hostile_input_is_never_a_500(
    api: Api, ready: Cluster, owner_token: str, method: str, path: str
) -> None:
    before = row_counts()
    for body in HOSTILE_BODIES:
        response = api(method, path, owner_token, body)
        assert 400 <= response.status_code < 500, (body, response.content[:300])
        assert "error" in response.json()
    for raw in HOSTILE_RAW:
        response = api(method, path, owner_token, raw=raw)
        assert 400 <= response.status_code < 500, (raw[:80], response.content[:300])
        assert "error" in response.json()
    assert row_counts() == before


def test_listing_takes_the_same_queries_for_more_clusters(
    api: Api, account: AwsAccount, viewer_token: str, django_assert_max_num_queries: Any
) -> None:
    api("GET", "/clusters", viewer_token)  # records the token's first use
    factories.make_cluster(account)
    with django_assert_max_num_queries(2) as few:
        assert len(api("GET", "/clusters", viewer_token).json()) == 1
    for _ in range(20):
        factories.make_cluster(factories.make_account(account.team))
    with django_assert_max_num_queries(len(few)):
        assert len(api("GET", "/clusters", viewer_token).json()) == 21
