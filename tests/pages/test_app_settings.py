"""An app's settings on its page: pre-filled, changed with an audit entry of what changed, refused
beside the form with nothing written, optionally redeployed with the live image; writers only."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import App, AuditEntry, Deployment, Job, Release
from tests import factories
from tests.pages.conftest import HTMX, deployed

pytestmark = pytest.mark.django_db

SETTINGS = (
    "port", "health_check_path", "cpu", "memory", "command", "min_healthy_percent",
    "max_percent", "circuit_breaker", "rollout_timeout_seconds",
)  # fmt: skip


def _settings(app: App) -> tuple[object, ...]:
    app.refresh_from_db()
    return tuple(getattr(app, name) for name in SETTINGS)


def _counts() -> tuple[int, ...]:
    return (
        Release.objects.count(),
        Deployment.objects.count(),
        Job.objects.count(),
        AuditEntry.objects.count(),
    )


def _form(app: App, **fields: str | None) -> dict[str, str]:
    """The form as the page pre-fills it for `app`, with `fields` changed (None: left out)."""
    current = {
        "port": str(app.port),
        "health_check_path": app.health_check_path,
        "size": f"{app.cpu}/{app.memory}",
        "command": app.command,
        "min_healthy_percent": str(app.min_healthy_percent),
        "max_percent": str(app.max_percent),
        "rollout_timeout_seconds": str(app.rollout_timeout_seconds),
        "circuit_breaker": "on" if app.circuit_breaker else None,
    }
    return {name: value for name, value in (current | fields).items() if value is not None}


def _post(client: Client, form: dict[str, str], **headers: Any) -> Any:
    return client.post(reverse("app_settings", args=["web"]), form, **headers)


def test_the_form_is_prefilled_with_the_apps_settings(owner_client: Client, app: App) -> None:
    app.port, app.cpu, app.memory, app.command = 8080, 512, 2048, "gunicorn app:wsgi"
    app.save()

    page = owner_client.get(reverse("app", args=["web"])).text

    assert 'id="settings-form"' in page
    assert f'action="{reverse("app_settings", args=["web"])}"' in page
    assert 'name="port" value="8080"' in page
    assert 'name="health_check_path"' in page and 'name="health_check_path" value' not in page
    assert 'name="size" value="512/2048"' in page
    # Fargate's sizes are suggestions only: any size that fits the instance is accepted.
    assert 'list="size-suggestions"' in page
    assert '<option value="4096/30720">4 vCPU, 30 GB</option>' in page
    assert ">\ngunicorn app:wsgi</textarea>" in page
    assert 'name="rollout_timeout_seconds" value="900"' in page
    assert 'name="circuit_breaker" id="id_circuit_breaker" checked' in page
    assert 'name="deploy_now"' not in page  # nothing is live to redeploy yet


def test_an_owner_changes_the_health_check_and_rolling_updates(
    owner_client: Client, owner: Any, app: App
) -> None:
    form = _form(
        app, health_check_path="/healthz", min_healthy_percent="50", max_percent="150",
        circuit_breaker=None,
    )  # fmt: skip

    response = _post(owner_client, form, follow=True)

    assert _settings(app) == (80, "/healthz", 256, 512, "", 50, 150, False, 900)
    entry = AuditEntry.objects.get(action="app.update")
    assert (entry.actor, entry.target_id) == (owner, app.pk)
    assert entry.details == {
        "before": {"health_check_path": "", "min_healthy_percent": 100, "max_percent": 200,
                   "circuit_breaker": True},
        "after": {"health_check_path": "/healthz", "min_healthy_percent": 50, "max_percent": 150,
                  "circuit_breaker": False},
    }  # fmt: skip
    assert Release.objects.count() == 0 and Deployment.objects.count() == 0
    assert response.redirect_chain[-1][0] == reverse("app", args=["web"])
    saved = (
        "Saved web's settings: health-check path /healthz (was none), minimum healthy % 50 "
        "(was 100), maximum % 150 (was 200), circuit breaker off (was on). Task-definition "
        "settings take effect with the next release: a deploy, config or secret change (a "
        "rollback runs its release's own); running tasks keep the old ones. Rolling-update "
        "settings apply from the next rollout, rollbacks included."
    )
    assert escape(saved) in response.text
    assert "<dt>Health check</dt><dd><code>/healthz</code></dd>" in response.text
    assert "minimum healthy 50 %, maximum 150 %; no circuit breaker" in response.text
    assert 'name="health_check_path" value="/healthz"' in response.text
    activity = owner_client.get(reverse("activity")).text
    assert "changed settings of app" in activity


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"port": "8080"}, "port 8080 (was 80). Task-definition settings take effect"),
        ({"size": "512/1024"}, "CPU 512 units (was 256 units), memory 1024 MiB (was 512 MiB)."),
        ({"size": "128/128"}, "CPU 128 units (was 256 units), memory 128 MiB (was 512 MiB)."),
        ({"command": ""}, "command the image&#x27;s own (was npm start). Task-definition"),
        ({"max_percent": "300"}, "(was 200). Rolling-update settings apply from the next rollout"),
        (
            {"rollout_timeout_seconds": "120"},
            "rollout timeout 2 min (was 15 min). The rollout timeout applies at once, also to a "
            "rollout in flight.",
        ),
    ],
)
def test_the_message_says_when_each_change_takes_effect(
    owner_client: Client, app: App, fields: dict[str, str], words: str
) -> None:
    app.command = "npm start"
    app.save()

    response = _post(owner_client, _form(app, **fields), follow=True)

    assert words in response.text
    assert ("Rolling-update" in response.text) == ("max_percent" in fields)
    assert ("Task-definition" in response.text) == bool({"port", "size", "command"} & set(fields))


def test_an_htmx_save_redirects_the_browser(client: Client, deployer: Any, app: App) -> None:
    client.force_login(deployer)

    response = _post(client, _form(app, port="8080"), **HTMX)

    assert response["HX-Redirect"] == reverse("app", args=["web"])
    assert _settings(app)[0] == 8080


def test_html_in_a_command_is_saved_and_shown_escaped(owner_client: Client, app: App) -> None:
    command = "<script>alert(1)</script> && echo '\"x\"'"

    response = _post(owner_client, _form(app, command=command), follow=True)

    assert _settings(app)[4] == command
    assert "<script>alert(1)</script>" not in response.text
    assert f'<code class="wrap">{escape(command)}</code>' in response.text
    assert f">\n{escape(command)}</textarea>" in response.text


def test_line_breaks_in_a_command_are_saved_as_sh_expects(owner_client: Client, app: App) -> None:
    _post(owner_client, _form(app, command="echo one\r\necho two"))

    assert _settings(app)[4] == "echo one\necho two"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"size": "4096/30720"}, "does not fit on a t3.medium instance"),
        ({"size": "64/512"}, "CPU must be between 128 and 196608 units"),
        ({"size": "half a vCPU"}, "Enter the task size as CPU units/MiB"),
        ({"port": "0"}, "greater than or equal to 1"),
        ({"port": "70000"}, "less than or equal to 65535"),
        ({"port": "eighty"}, "Enter a whole number"),
        ({"health_check_path": "healthz"}, "Enter a path starting with /."),
        ({"min_healthy_percent": "101"}, "less than or equal to 100"),
        ({"max_percent": "99"}, "greater than or equal to 100"),
        ({"max_percent": "401"}, "less than or equal to 400"),
        ({"rollout_timeout_seconds": "59"}, "greater than or equal to 60"),
        ({"command": "x" * 1001}, "at most 1000 characters"),
        ({"port": "0", "command": "<script>alert(1)</script>"}, "greater than or equal to 1"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_settings_are_refused_beside_the_form_and_nothing_is_written(
    owner_client: Client, app: App, fields: dict[str, str], error: str, htmx: bool
) -> None:
    deployed(app)
    before, counts = _settings(app), _counts()
    headers: Any = HTMX if htmx else {}

    # A valid change beside the bad one is not saved either.
    response = _post(
        owner_client, _form(app, **({"health_check_path": "/ready"} | fields)), **headers
    )

    assert response.status_code == 200 and error in response.text
    assert _settings(app) == before and _counts() == counts
    assert "<script>alert(1)</script>" not in response.text
    if "command" in fields and len(fields["command"]) < 1000:
        assert f">\n{escape(fields['command'])}</textarea>" in response.text
    if htmx:
        assert response.text.lstrip().startswith('<form id="settings-form"')
    else:
        assert '<details class="confirm" open>' in response.text
        assert "<dt>Port</dt><dd>80</dd>" in response.text  # the card shows the app as it is


def test_a_submit_that_changes_nothing_says_so(owner_client: Client, app: App) -> None:
    deployed(app)
    counts = _counts()

    response = _post(owner_client, _form(app, deploy_now="on"), **HTMX)

    assert response.status_code == 200 and "Nothing changed." in response.text
    assert _counts() == counts


def test_an_app_being_deleted_is_refused(owner_client: Client, app: App) -> None:
    factories.make_job(app.team, app, kind="delete_app", status="running")
    before, counts = _settings(app), _counts()

    page = _post(owner_client, _form(app, port="8080"))
    fragment = _post(owner_client, _form(app, port="8080"), **HTMX)

    assert "web is being deleted" in page.text and 'id="settings-form"' not in page.text
    assert "web is being deleted." in fragment.text
    assert fragment.text.lstrip().startswith('<form id="settings-form"')
    assert _settings(app) == before and _counts() == counts


# Deploying the live image with the new settings


def test_the_live_image_can_be_deployed_with_the_new_settings(
    owner_client: Client, app: App
) -> None:
    deployed(app, "nginx:1.27")
    page = owner_client.get(reverse("app", args=["web"])).text

    response = _post(
        owner_client, _form(app, health_check_path="/healthz", deploy_now="on"), follow=True
    )

    assert 'name="deploy_now"' in page and "(nginx:1.27)" in page
    release = Release.objects.get(app=app, version=2)
    assert (release.image, release.kind) == ("nginx:1.27", "deploy")
    assert release.description == "Settings change: health-check path"
    assert release.config["health_check_path"] == "/healthz"
    assert Deployment.objects.filter(release=release, status="queued").exists()
    assert "Deploying nginx:1.27 with the new settings as v2…" in response.text
    actions = AuditEntry.objects.order_by("pk").values_list("action", flat=True)
    assert list(actions) == ["app.update", "app.deploy"]
    releases = owner_client.get(reverse("app_releases", args=["web"])).text
    assert "Health check (none) → /healthz" in releases


def test_a_redeploy_refused_during_a_rollout_leaves_the_settings_saved(
    owner_client: Client, app: App
) -> None:
    deployed(app, "nginx:1.27")
    deployed(app, "nginx:1.28", status="in_progress")

    response = _post(owner_client, _form(app, port="8080", deploy_now="on"), follow=True)

    assert _settings(app)[0] == 8080
    assert Release.objects.filter(app=app).count() == 2
    assert "Saved web&#x27;s settings: port 8080 (was 80)." in response.text
    assert "Not deployed: v2 is still rolling out to web" in response.text


def test_without_a_live_release_nothing_is_deployed(owner_client: Client, app: App) -> None:
    response = _post(owner_client, _form(app, port="8080", deploy_now="on"), follow=True)

    assert _settings(app)[0] == 8080 and Release.objects.count() == 0
    assert "Nothing deployed: web has no live release yet." in response.text


# Who may


def test_a_viewer_sees_the_settings_but_no_form(viewer_client: Client, app: App) -> None:
    page = viewer_client.get(reverse("app", args=["web"])).text

    assert "<dt>Health check</dt>" in page and "<dt>Rollout timeout</dt>" in page
    assert 'id="settings-form"' not in page and "Edit settings" not in page


def test_viewers_are_forbidden_and_outsiders_get_404(
    client: Client, viewer: Any, outsider: Any, app: App
) -> None:
    before, counts = _settings(app), _counts()

    client.force_login(viewer)
    as_viewer = _post(client, _form(app, port="8080"))
    client.force_login(outsider)
    as_outsider = _post(client, _form(app, port="8080"))
    client.logout()
    signed_out = _post(client, _form(app, port="8080"))

    assert (as_viewer.status_code, as_outsider.status_code) == (403, 404)
    assert signed_out["Location"].startswith(reverse("login"))
    assert _settings(app) == before and _counts() == counts


def test_the_url_takes_only_posts(owner_client: Client, app: App) -> None:
    assert owner_client.get(reverse("app_settings", args=["web"])).status_code == 405
