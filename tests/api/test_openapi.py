"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document, generated from the routers' schemas,
that describes exactly the routes there are, and whose schemas match what the endpoints answer."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.urls import URLPattern

from deployments.api import urls as api_urls
from deployments.api.api import api as ninja_api
from deployments.models import Cluster, Deployment, Team
from tests import factories
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
SPEC: dict[str, Any] = json.loads(json.dumps(ninja_api.get_openapi_schema()))


def documented() -> dict[str, set[str]]:
    return {
        path: {method.upper() for method in item if method.upper() in METHODS}
        for path, item in SPEC["paths"].items()
    }


def routes() -> list[str]:
    """The API's routes as OpenAPI paths: "clusters/<str:name>" → "/clusters/{name}"."""
    paths = []
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name == "not-found":
            continue
        route = str(pattern.pattern)
        paths.append("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return paths


@pytest.fixture
def cluster(team: Team) -> Cluster:
    account = factories.make_account(team, name="main")
    return factories.make_cluster(account, name="web", status=Cluster.Status.READY)


@pytest.fixture
def deployment(cluster: Cluster) -> Deployment:
    """An app "web" on the cluster, with a rollout in flight."""
    app = factories.make_app(cluster, name="web")
    return factories.make_deployment(factories.make_release(app), status="in_progress")


def url(path: str, deployment: Deployment) -> str:
    return path.replace("{name}", "web").replace("{id}", str(deployment.pk))


def test_it_is_public_json(api: Api) -> None:
    response = api("GET", "/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    spec = json.loads(response.content)
    assert spec == SPEC
    assert spec["openapi"] == "3.1.0"


def test_it_is_a_valid_openapi_3_1_document() -> None:
    validator = pytest.importorskip("openapi_spec_validator")

    validator.validate(json.loads(json.dumps(SPEC)), cls=validator.OpenAPIV31SpecValidator)


def test_it_describes_the_bearer_scheme_and_the_error_shape() -> None:
    """Every operation but the document's own requires the bearer token."""
    scheme = SPEC["components"]["securitySchemes"]["TeamToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in SPEC["paths"].items():
        for operation in item.values():
            public = path == "/openapi.json"
            assert operation.get("security") == (None if public else [{"TeamToken": []}]), path
    error = SPEC["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and set(error["properties"]) == {"error", "fields"}


def test_every_route_is_documented_and_nothing_else() -> None:
    assert sorted(routes()) == sorted(documented())


def test_documented_methods_are_the_routes_methods(
    api: Api, deployment: Deployment, owner_token: str
) -> None:
    for path, methods in documented().items():
        # No route takes TRACE: the 405 tells the rest.
        response = api("TRACE", url(path, deployment), owner_token)

        assert response.status_code == 405
        assert set(response["Allow"].split(", ")) == methods, path


def test_every_documented_operation_answers(
    api: Api, deployment: Deployment, owner_token: str
) -> None:
    """Each documented path and method reaches its view, which answers one of the documented
    statuses (bodies left empty: a write then answers 400, which every write documents)."""
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method.upper() not in METHODS:
                continue
            response = api(method.upper(), url(path, deployment), owner_token)

            assert str(response.status_code) in operation["responses"], (method, path)
            assert response.status_code != 405


def _validate(instance: Any, schema_name: str) -> None:
    _validate_against({"$ref": f"#/components/schemas/{schema_name}"}, instance)


def _validate_body(instance: Any, path: str, method: str) -> None:
    """Against the request body an operation documents (a schema of its own, or a reference)."""
    body = SPEC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    _validate_against(body, instance)


def _validate_against(schema: dict[str, Any], instance: Any) -> None:
    validators = pytest.importorskip("openapi_schema_validator")
    validators.validate(
        instance, schema | {"components": SPEC["components"]}, cls=validators.OAS31Validator
    )


def test_answers_match_the_documented_schemas(api: Api, cluster: Cluster, owner_token: str) -> None:
    cluster.steps = [{"name": "vpc", "status": "done", "error": None}]
    cluster.resources = {"vpc_id": "vpc-1"}
    cluster.save()

    _validate(api("GET", "/clusters/web", owner_token).json(), "Cluster")
    for item in api("GET", "/clusters", owner_token).json():
        _validate(item, "Cluster")
    for item in api("GET", "/accounts", owner_token).json():
        _validate(item, "Account")
    created = api("POST", "/accounts", owner_token, {"name": "prod", "mode": "sandbox"})
    _validate(created.json(), "Account")
    _validate(api("POST", "/clusters", owner_token, {"name": 1}).json(), "Error")
    _validate(api("GET", "/clusters/nope", owner_token).json(), "Error")
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        _validate({"name": "api", "account": "main", "status": "ready"}, "ClusterCreate")


def test_app_and_rollout_answers_match_the_documented_schemas(
    api: Api, deployment: Deployment, owner_token: str
) -> None:
    app = deployment.app
    factories.make_event(deployment)
    live = factories.make_deployment(factories.make_release(app), finished_at=deployment.created_at)

    _validate(api("GET", "/apps/web", owner_token).json(), "App")
    for item in api("GET", "/apps", owner_token).json():
        _validate(item, "App")
    for item in api("GET", "/apps/web/releases", owner_token).json():
        _validate(item, "Release")
    _validate(api("GET", f"/deployments/{deployment.pk}", owner_token).json(), "Deployment")
    scaling = {"autoscaling": False, "desired_count": 3}
    _validate_body(scaling, "/apps/{name}/scaling", "put")
    _validate(api("PUT", "/apps/web/scaling", owner_token, scaling).json(), "Scaling")
    cancelled = api("POST", f"/deployments/{deployment.pk}/cancel", owner_token)
    assert cancelled.status_code == 202
    _validate(cancelled.json(), "Cancelled")
    assert cancelled.json()["rollback"]["release"]["rollback_of"] == live.release.version

    Deployment.objects.filter(status="queued").update(status="failed")
    body = {"image": "nginx:1.27", "description": "Again"}
    _validate(body, "Deploy")
    deployed = api("POST", "/apps/web/deploys", owner_token, body)
    assert deployed.status_code == 202, deployed.content
    _validate(deployed.json(), "Rollout")

    Deployment.objects.filter(status="queued").update(status="failed")
    deleted = api("DELETE", "/apps/web", owner_token)
    assert deleted.status_code == 202
    _validate(deleted.json()["job"], "Job")

    _validate({"name": "api", "cluster": "web", "config_vars": {"A": "b"}}, "AppCreate")
    _validate({"config_vars": {"GREETING": "hi"}}, "ConfigVars")
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError):
        _validate_body({"autoscaling": True, "desired_count": 3}, "/apps/{name}/scaling", "put")
    with pytest.raises(jsonschema.ValidationError):
        _validate({"name": "api", "cluster": "web", "live_release": 1}, "AppCreate")


def test_secret_answers_match_the_documented_schemas(
    api: Api, cluster: Cluster, owner_token: str
) -> None:
    app = factories.make_app(cluster, name="web")
    factories.make_deployment(factories.make_release(app))  # v1, live
    body = {"value": "correct horse"}
    _validate(body, "SecretValue")

    put = api("PUT", "/apps/web/secrets/API_KEY", owner_token, body)
    assert put.status_code == 202, put.content
    _validate(put.json(), "Rollout")
    shown = api("GET", "/apps/web", owner_token).json()
    _validate(shown, "App")
    assert shown["secret_names"] == ["API_KEY"]

    Deployment.objects.filter(status="queued").update(status="succeeded")
    deleted = api("DELETE", "/apps/web/secrets/API_KEY", owner_token)
    assert deleted.status_code == 202, deleted.content
    _validate(deleted.json(), "Rollout")
    _validate(api("DELETE", "/apps/web/secrets/API_KEY", owner_token).json(), "Error")
    jsonschema = pytest.importorskip("jsonschema")
    for refused in ({"value": ""}, {"value": 1}, {}, {"value": "x", "name": "A"}):
        with pytest.raises(jsonschema.ValidationError):
            _validate(refused, "SecretValue")
