"""Secrets on the app's page: add, replace and remove them; refusals beside the form with the value
field empty; only writers see the forms; names shown, values never."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments import encryption
from deployments.models import App, Deployment, Job, Release
from tests import factories
from tests.pages.conftest import HTMX, deployed

pytestmark = pytest.mark.django_db

VALUE = "hunter2-Page-Planted-77ab"


def stored(app: App) -> dict[str, str]:
    app.refresh_from_db()
    return {name: encryption.decrypt(token) for name, token in app.secrets.items()}


def with_secret(app: App, name: str = "API_KEY", value: str = "kept") -> App:
    app.secrets = {**app.secrets, name: encryption.encrypt(value)}
    app.save()
    return app


def settle() -> None:
    Deployment.objects.filter(status="queued").update(status="succeeded")


def _counts() -> tuple[int, ...]:
    return Release.objects.count(), Deployment.objects.count(), Job.objects.count()


def _set(client: Client, name: str, value: str, **headers: Any) -> Any:
    url = reverse("app_secret_set", args=["web"])
    return client.post(url, {"name": name, "value": value}, **headers)


def _value_input(html: str) -> str:
    match = re.search(r'<input type="password" name="value"[^>]*>', html)
    assert match is not None, "no value field"
    return match.group(0)


def test_setting_a_secret_makes_a_release_and_deploys_it(owner_client: Client, app: App) -> None:
    deployed(app, "nginx:1.27")

    response = owner_client.post(
        reverse("app_secret_set", args=["web"]), {"name": "API_KEY", "value": VALUE}, follow=True
    )

    assert stored(app) == {"API_KEY": VALUE}
    release = Release.objects.get(app=app, version=2)
    assert (release.kind, release.image, release.description) == (
        "config", "nginx:1.27", "Secret set: API_KEY",
    )  # fmt: skip
    assert release.config["secrets"] == app.secrets
    assert Deployment.objects.filter(release=release, status="queued").exists()
    assert "Saved the secret API_KEY as v2; deploying it…" in response.text
    assert "<code>API_KEY</code>" in response.text
    assert VALUE not in response.text
    releases = owner_client.get(reverse("app_releases", args=["web"])).text
    assert "Added secret <code>API_KEY</code>" in releases and VALUE not in releases
    activity = owner_client.get(reverse("activity")).text
    assert "changed a secret of app" in activity and VALUE not in activity


def test_an_htmx_set_redirects_the_browser(owner_client: Client, app: App) -> None:
    deployed(app)

    response = _set(owner_client, "API_KEY", VALUE, **HTMX)

    assert response["HX-Redirect"] == reverse("app", args=["web"])
    assert VALUE not in response.text
    assert stored(app) == {"API_KEY": VALUE}


def test_setting_an_existing_name_replaces_its_value(owner_client: Client, app: App) -> None:
    deployed(app)
    with_secret(app, "API_KEY", "old")

    _set(owner_client, "API_KEY", VALUE)

    assert stored(app) == {"API_KEY": VALUE}


def test_the_value_field_is_a_password_field_that_stays_empty(
    owner_client: Client, app: App
) -> None:
    deployed(app)

    field = _value_input(owner_client.get(reverse("app", args=["web"])).text)

    assert 'autocomplete="off"' in field and "value=" not in field


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("1BAD", VALUE, "&#x27;1BAD&#x27; is not a valid variable name"),
        ("A B", VALUE, "&#x27;A B&#x27; is not a valid variable name"),
        ("<script>", VALUE, "&#x27;&lt;script&gt;&#x27; is not a valid variable name"),
        ("AWS_KEY", VALUE, "uses a prefix reserved by AWS and ECS"),
        ("GREETING", VALUE, "GREETING is a plain config var; remove it first."),
        ("API_KEY", "", "This field is required."),
        ("API_KEY", VALUE * 200, "bytes; at most 4096 fit in SSM."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_refusals_show_beside_the_form_with_an_empty_value(
    owner_client: Client, app: App, name: str, value: str, error: str, htmx: bool
) -> None:
    app.config_vars = {"GREETING": "hi"}
    app.save()
    deployed(app)
    before = _counts()
    headers: Any = HTMX if htmx else {}

    response = _set(owner_client, name, value, **headers)

    assert response.status_code == 200 and error in response.text
    assert VALUE not in response.text
    assert "value=" not in _value_input(response.text)
    assert _counts() == before
    assert stored(app) == {}
    if htmx:
        assert response.text.lstrip().startswith('<form id="secret-form"')


def test_a_secret_before_the_first_deploy_says_to_deploy_first(
    owner_client: Client, app: App
) -> None:
    response = _set(owner_client, "API_KEY", VALUE)

    assert "Deploy web once before changing its config." in response.text
    assert VALUE not in response.text
    assert stored(app) == {} and Release.objects.count() == 0


def test_a_secret_during_a_rollout_is_refused_inline(owner_client: Client, app: App) -> None:
    deployed(app)
    deployed(app, "nginx:1.28", status="in_progress")

    response = _set(owner_client, "API_KEY", VALUE, **HTMX)

    assert "v2 is still rolling out to web" in response.text
    assert stored(app) == {}


def test_removing_a_secret_is_confirmed_then_deploys(owner_client: Client, app: App) -> None:
    with_secret(app, "API_KEY")
    with_secret(app, "DB_PASSWORD")
    deployed(app, config={"env": {}, "secrets": dict(app.secrets)})
    remove = reverse("app_secret_remove", args=["web", "API_KEY"])

    page = owner_client.get(reverse("app", args=["web"])).text
    response = owner_client.post(remove, follow=True)

    confirm = re.search(r'<details class="confirm">.*?</details>', page, re.S)
    assert confirm is not None and f'action="{remove}"' in confirm.group(0)
    assert "Remove API_KEY? A new release without it is deployed at once." in confirm.group(0)
    assert stored(app) == {"DB_PASSWORD": "kept"}
    release = Release.objects.get(app=app, version=2)
    assert release.description == "Secret removed: API_KEY"
    assert list(release.config["secrets"]) == ["DB_PASSWORD"]
    assert "Removed the secret API_KEY as v2; deploying it…" in response.text
    assert "<code>API_KEY</code>" not in response.text
    releases = owner_client.get(reverse("app_releases", args=["web"])).text
    assert "Removed secret <code>API_KEY</code>" in releases


def test_removing_an_unknown_secret_says_so(owner_client: Client, app: App) -> None:
    deployed(app)
    before = _counts()

    response = owner_client.post(reverse("app_secret_remove", args=["web", "MISSING"]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("app", args=["web"])
    assert "web has no secret named MISSING." in response.text
    assert _counts() == before


def test_removing_from_an_app_being_deleted_is_refused(owner_client: Client, app: App) -> None:
    deployed(app)
    with_secret(app)
    factories.make_job(app.team, app, kind="delete_app", status="running")

    response = owner_client.post(reverse("app_secret_remove", args=["web", "API_KEY"]), follow=True)

    assert "web is being deleted." in response.text
    assert stored(app) == {"API_KEY": "kept"}
    assert 'id="secret-form"' not in response.text and "Remove…" not in response.text


def test_a_viewer_sees_the_names_but_no_secret_controls(viewer_client: Client, app: App) -> None:
    deployed(app)
    with_secret(app, "API_KEY", VALUE)

    page = viewer_client.get(reverse("app", args=["web"])).text

    assert "<code>API_KEY</code>" in page and VALUE not in page
    assert 'id="secret-form"' not in page and "Remove…" not in page
    assert reverse("app_secret_remove", args=["web", "API_KEY"]) not in page


@pytest.mark.parametrize("role", ["owner", "deployer"])
def test_writers_see_the_secret_controls(
    client: Client, request: pytest.FixtureRequest, app: App, role: str
) -> None:
    deployed(app)
    with_secret(app)
    client.force_login(request.getfixturevalue(role))

    page = client.get(reverse("app", args=["web"])).text

    assert 'id="secret-form"' in page and "Remove…" in page


@pytest.mark.parametrize(
    ("name", "args", "form"),
    [
        ("app_secret_set", ["web"], {"name": "API_KEY", "value": VALUE}),
        ("app_secret_remove", ["web", "API_KEY"], {}),
    ],
)
def test_viewers_and_outsiders_cannot_change_secrets(
    client: Client, viewer: Any, outsider: Any, app: App, name: str, args: Any,
    form: dict[str, str],
) -> None:  # fmt: skip
    deployed(app)
    with_secret(app)
    before = _counts()

    client.force_login(viewer)
    as_viewer = client.post(reverse(name, args=args), form)
    client.force_login(outsider)
    as_outsider = client.post(reverse(name, args=args), form)

    assert (as_viewer.status_code, as_outsider.status_code) == (403, 404)
    assert _counts() == before
    assert stored(app) == {"API_KEY": "kept"}
