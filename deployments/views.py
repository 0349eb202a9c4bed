"""The dashboard's pages: parse, authorize (one helper per object kind), call a service, render.

A URL that serves a page answers an HTMX request with the live part of it, a template partial;
a fragment that is being polled answers 286 (stop polling) once what it follows has settled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from deployments import selectors, services
from deployments.client_address import client_address
from deployments.forms import (
    ApiTokenForm,
    AppCreateForm,
    AppDeleteForm,
    AppUpdateForm,
    AssumeRoleAccountForm,
    ClusterCreateForm,
    ClusterDeleteForm,
    ClusterResizeForm,
    ConfigForm,
    DeployForm,
    ScalingForm,
    SecretForm,
    ServiceForm,
)
from deployments.models import (
    App,
    AwsAccount,
    Cluster,
    Deployment,
    Job,
    Membership,
    Team,
    name_validator,
)
from deployments.services import Conflict
from deployments.templatetags.dashboard import duration

TEAM_SESSION_KEY = "team"
ACTIVITY_PAGE_SIZE = 50
MAX_NAME_FILTER = 100  # longer than any name
MAX_ID = 2**63 - 1  # BigAutoField's largest; a larger id in a URL is no row (and no query)


class AuthedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
    memberships: list[Membership]  # all of the user's, set by _current_membership


# Who may see and change what


def _current_membership(request: AuthedRequest) -> Membership | None:
    membership, request.memberships = selectors.current_membership(
        request.user, request.session.get(TEAM_SESSION_KEY)
    )
    return membership


def _get_membership(request: AuthedRequest, *, write: bool = False) -> Membership:
    """The membership of the team the user is working in; viewers may only read."""
    membership = _current_membership(request)
    if membership is None:
        raise Http404("You are not in a team.")
    if write and not membership.can_deploy:
        raise PermissionDenied("Viewers can look but not change anything.")
    return membership


def _get_account_for_user(
    request: AuthedRequest, name: str, *, write: bool = False
) -> tuple[Membership, AwsAccount]:
    membership = _get_membership(request, write=write)
    account = selectors.account_by_name(membership.team, name)
    if account is None:
        raise Http404("No such AWS account in this team.")
    return membership, account


def _get_cluster_for_user(
    request: AuthedRequest, name: str, *, write: bool = False
) -> tuple[Membership, Cluster]:
    membership = _get_membership(request, write=write)
    try:
        name_validator(name)  # a name no cluster can have is not looked up
    except ValidationError:
        raise Http404("No such cluster in this team.") from None
    cluster = selectors.cluster_by_name(membership.team, name)
    if cluster is None:
        raise Http404("No such cluster in this team.")
    return membership, cluster


def _get_app_for_user(
    request: AuthedRequest,
    name: str,
    *,
    write: bool = False,
    select: Callable[[Team, str], App | None] = selectors.app_for_page,
) -> tuple[Membership, App]:
    membership = _get_membership(request, write=write)
    try:
        name_validator(name)
    except ValidationError:
        raise Http404("No such app in this team.") from None
    app = select(membership.team, name)
    if app is None:
        raise Http404("No such app in this team.")
    return membership, app


def _get_deployment_for_user(
    request: AuthedRequest, name: str, pk: int, *, write: bool = False
) -> tuple[Membership, App, Deployment]:
    membership, app = _get_app_for_user(request, name, write=write)
    deployment = selectors.app_deployment(app, pk) if pk <= MAX_ID else None
    if deployment is None:
        raise Http404("No such deployment of this app.")
    return membership, app, deployment


# Answering


def _wants_fragment(request: AuthedRequest) -> bool:
    # htmx restoring history asks with HX-Request too, but wants the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _page(request: AuthedRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {"memberships": request.memberships, **context})


def _fragment(
    request: AuthedRequest, template: str, context: dict[str, Any], *, settled: bool = False
) -> HttpResponse:
    html = render_to_string(template, context, request=request)
    return HttpResponseStopPolling(html) if settled else HttpResponse(html)


def _done(request: AuthedRequest, url: str) -> HttpResponse:
    """After a write: a real navigation, so the page shows the flash message and the new state."""
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


def _refusal(error: ValidationError | Conflict) -> str:
    """A service's refusal in words, for a flash message."""
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


# Overview and team


@require_GET
@login_required
@vary_on_headers("HX-Request")
def overview(request: AuthedRequest) -> HttpResponse:
    """The team's clusters and apps (a page of them, filtered by ?q=<part of a name>). Each table
    follows what is in flight in it on its own: a poll names its table in HX-Target."""
    membership = _current_membership(request)
    team = membership.team if membership else None
    clusters = list(selectors.clusters_of(team)) if team else []
    name_part = request.GET.get("q", "").strip()[:MAX_NAME_FILTER]
    apps = selectors.app_summaries(team, request.GET.get("page"), name_part) if team else []
    busy = any(cluster.status in selectors.CLUSTER_BUSY_STATUSES for cluster in clusters)
    apps_busy = any(app.in_flight for app in apps)
    # An empty overview leads to the next step: an account first, then a cluster on it.
    has_accounts = bool(clusters) or (team is not None and selectors.accounts_of(team).exists())
    context = {
        "membership": membership,
        "clusters": clusters,
        "apps": apps,
        "name_part": name_part,
        "busy": busy,
        "apps_busy": apps_busy,
        "has_accounts": has_accounts,
        "has_ready_cluster": any(c.status == Cluster.Status.READY for c in clusters),
    }
    if _wants_fragment(request) and request.htmx.target == "apps":
        return _fragment(request, "deployments/overview.html#apps", context, settled=not apps_busy)
    if _wants_fragment(request):
        return _fragment(request, "deployments/overview.html#clusters", context, settled=not busy)
    return _page(request, "deployments/overview.html", context)


@require_POST
@login_required
def team_switch(request: AuthedRequest) -> HttpResponse:
    _current_membership(request)
    chosen = next((m for m in request.memberships if m.team.slug == request.POST.get("team")), None)
    if chosen is None:
        raise Http404("You are not in that team.")
    request.session[TEAM_SESSION_KEY] = chosen.team.slug
    messages.success(request, f"Switched to {chosen.team.name}.")
    return _done(request, reverse("overview"))


# AWS accounts


def _accounts_context(
    membership: Membership,
    form: AssumeRoleAccountForm | None = None,
    token_form: ApiTokenForm | None = None,
) -> dict[str, Any]:
    rows = selectors.account_rows(membership.team)
    tokens = selectors.api_tokens_of(membership.team)
    return {
        "membership": membership,
        "rows": rows,
        "verifying": any(row.verifying for row in rows),
        "sandbox_allowed": settings.TINYSTACKS_ALLOW_SANDBOX,
        "form": form or AssumeRoleAccountForm(taken=selectors.accounts_of(membership.team)),
        "tokens": tokens.select_related("created_by"),
        "token_form": token_form or ApiTokenForm(taken=tokens.filter(revoked_at__isnull=True)),
    }


def _get_owner_membership(request: AuthedRequest) -> Membership:
    """API tokens act for the whole team: only its owners make and revoke them."""
    membership = _get_membership(request, write=True)
    if membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the team's owners manage API tokens.")
    return membership


@require_POST
@login_required
def api_token_create(request: AuthedRequest) -> HttpResponse:
    """Make a token and show it once, in this response: it is stored only as a hash."""
    membership = _get_owner_membership(request)
    taken = selectors.api_tokens_of(membership.team).filter(revoked_at__isnull=True)
    form = ApiTokenForm(request.POST, taken=taken)
    if form.is_valid():
        try:
            token, secret = services.api_token_create(
                team=membership.team, name=form.cleaned_data["name"],
                role=form.cleaned_data["role"], created_by=request.user,
            )  # fmt: skip
        except ValidationError as error:
            form.add_service_error(error)
        else:
            context = _accounts_context(membership) | {"new_token": token, "new_secret": secret}
            return _page(request, "deployments/accounts.html", context)
    context = _accounts_context(membership, token_form=form)
    return _page(request, "deployments/accounts.html", context)


@require_POST
@login_required
def api_token_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    membership = _get_owner_membership(request)
    token = selectors.api_tokens_of(membership.team).filter(pk=pk).first() if pk <= MAX_ID else None
    if token is None:
        raise Http404("No such API token in this team.")
    services.api_token_revoke(token=token, actor=request.user, ip_address=client_address(request))
    messages.success(request, f"Revoked the API token {token.name}.")
    return _done(request, reverse("accounts"))


@require_GET
@login_required
@vary_on_headers("HX-Request")
def accounts(request: AuthedRequest) -> HttpResponse:
    context = _accounts_context(_get_membership(request))
    if _wants_fragment(request):
        return _fragment(
            request,
            "deployments/accounts.html#accounts-table",
            context,
            settled=not context["verifying"],
        )
    return _page(request, "deployments/accounts.html", context)


@require_POST
@login_required
def account_connect_sandbox(request: AuthedRequest) -> HttpResponse:
    membership = _get_membership(request, write=True)
    try:
        account = services.account_create(
            team=membership.team,
            actor=request.user,
            name=selectors.account_name_available(membership.team, "sandbox"),
            mode=AwsAccount.Mode.SANDBOX,
            region="us-east-1",
            ip_address=client_address(request),
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Connected the local sandbox as {account.name}; verifying it…")
    return _done(request, reverse("accounts"))


@require_POST
@login_required
@vary_on_headers("HX-Request")
def account_connect(request: AuthedRequest) -> HttpResponse:
    """Connect an account through an IAM role; its page then shows how to create the role."""
    membership = _get_membership(request, write=True)
    form = AssumeRoleAccountForm(request.POST, taken=selectors.accounts_of(membership.team))
    if form.is_valid():
        try:
            account = services.account_create(
                team=membership.team,
                actor=request.user,
                mode=AwsAccount.Mode.ASSUME_ROLE,
                ip_address=client_address(request),
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request,
                f"Connected {account.name}. Create the role with the trust policy below, "
                "then verify again.",
            )
            return _done(request, reverse("account", args=[account.name]))
    context = _accounts_context(membership, form)
    if _wants_fragment(request):
        return _fragment(request, "deployments/accounts.html#connect-form", context)
    return _page(request, "deployments/accounts.html", context)


@require_GET
@login_required
@vary_on_headers("HX-Request")
def account_detail(request: AuthedRequest, name: str) -> HttpResponse:
    membership, account = _get_account_for_user(request, name)
    job = selectors.account_latest_verification(account)
    verifying = job is not None and job.status in Job.ACTIVE_STATUSES
    context: dict[str, Any] = {
        "membership": membership,
        "account": account,
        "job": job,
        "verifying": verifying,
    }
    if _wants_fragment(request):
        template = "deployments/account_detail.html#verification"
        return _fragment(request, template, context, settled=not verifying)
    context |= {
        "clusters": selectors.clusters_of(membership.team).filter(account=account),
        "trust_policy": selectors.account_trust_policy(account),
        "permissions_policy": selectors.account_permissions_policy(),
        "account_placeholder": selectors.ACCOUNT_PLACEHOLDER,
    }
    return _page(request, "deployments/account_detail.html", context)


@require_POST
@login_required
def account_verify(request: AuthedRequest, name: str) -> HttpResponse:
    _, account = _get_account_for_user(request, name, write=True)
    services.account_verify(account=account, actor=request.user)
    messages.info(request, f"Verifying {account.name}…")
    return _done(request, reverse("account", args=[account.name]))


# Clusters


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers("HX-Request")
def cluster_new(request: AuthedRequest) -> HttpResponse:
    membership = _get_membership(request, write=request.method == "POST")
    accounts = selectors.accounts_of(membership.team)
    clusters = selectors.clusters_of(membership.team)
    if request.method == "GET":
        only = list(accounts[:2])
        chosen = accounts.filter(name=request.GET.get("account", "")).first() or (
            only[0] if len(only) == 1 else None
        )
        initial = {"account": chosen, "name": "" if clusters.exists() else "main"}
        form = ClusterCreateForm(accounts=accounts, taken=clusters, initial=initial)
    else:
        form = ClusterCreateForm(request.POST, accounts=accounts, taken=clusters)
        if form.is_valid():
            try:
                fields = form.cleaned_data | {"region": form.cleaned_data["region"] or None}
                cluster = services.cluster_create(
                    team=membership.team,
                    actor=request.user,
                    ip_address=client_address(request),
                    **fields,
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, f"Provisioning cluster {cluster.name}…")
                return _done(request, reverse("cluster", args=[cluster.name]))
    context = {"membership": membership, "form": form, "has_accounts": accounts.exists()}
    if request.method == "POST" and _wants_fragment(request):
        return _fragment(request, "deployments/cluster_new.html#cluster-form", context)
    return _page(request, "deployments/cluster_new.html", context)


def _cluster_context(
    membership: Membership,
    cluster: Cluster,
    resize_form: ClusterResizeForm | None = None,
    delete_form: ClusterDeleteForm | None = None,
) -> dict[str, Any]:
    job = selectors.cluster_latest_job(cluster)
    job_running = job is not None and job.status in Job.ACTIVE_STATUSES
    steps = selectors.cluster_steps(cluster)
    busy = cluster.status in selectors.CLUSTER_BUSY_STATUSES or job_running
    capacity = selectors.cluster_capacity(cluster)
    return {
        "membership": membership,
        "cluster": cluster,
        "job": job,
        "busy": busy,
        # Polling also while the instances catch up with a change, which no job waits for.
        "following": busy or capacity.settling,
        "steps": steps,
        "steps_done": sum(step.status == "done" for step in steps),
        "resources": selectors.cluster_resources(cluster),
        "capacity": capacity,
        "resize_form": resize_form or ClusterResizeForm.for_cluster(cluster),
        "delete_form": delete_form or ClusterDeleteForm(cluster_name=cluster.name),
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def cluster_detail(request: AuthedRequest, name: str) -> HttpResponse:
    membership, cluster = _get_cluster_for_user(request, name)
    context = _cluster_context(membership, cluster)
    if _wants_fragment(request):
        template = "deployments/cluster_detail.html#cluster-live"
        return _fragment(request, template, context, settled=not context["following"])
    return _page(request, "deployments/cluster_detail.html", context)


def _cluster_form_errors(
    request: AuthedRequest, partial: str, context: dict[str, Any]
) -> HttpResponse:
    if _wants_fragment(request):
        return _fragment(request, f"deployments/cluster_detail.html#{partial}", context)
    return _page(request, "deployments/cluster_detail.html", context)


@require_POST
@login_required
@vary_on_headers("HX-Request")
def cluster_resize(request: AuthedRequest, name: str) -> HttpResponse:
    membership, cluster = _get_cluster_for_user(request, name, write=True)
    form = ClusterResizeForm(request.POST)
    if form.is_valid():
        try:
            services.cluster_scale(
                cluster=cluster,
                actor=request.user,
                ip_address=client_address(request),
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Resizing cluster {cluster.name}…")
            return _done(request, reverse("cluster", args=[cluster.name]))
    cluster.refresh_from_db()  # the form shows the errors; the page, the cluster as it is
    context = _cluster_context(membership, cluster, resize_form=form)
    return _cluster_form_errors(request, "resize-form", context)


@require_POST
@login_required
def cluster_retry(request: AuthedRequest, name: str) -> HttpResponse:
    _, cluster = _get_cluster_for_user(request, name, write=True)
    try:
        services.cluster_retry(
            cluster=cluster, actor=request.user, ip_address=client_address(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Provisioning cluster {cluster.name} again…")
    return _done(request, reverse("cluster", args=[cluster.name]))


@require_POST
@login_required
@vary_on_headers("HX-Request")
def cluster_delete(request: AuthedRequest, name: str) -> HttpResponse:
    membership, cluster = _get_cluster_for_user(request, name, write=True)
    form = ClusterDeleteForm(request.POST, cluster_name=cluster.name)
    if form.is_valid():
        try:
            services.cluster_delete(
                cluster=cluster, actor=request.user, ip_address=client_address(request)
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Deleting cluster {cluster.name}…")
            return _done(request, reverse("cluster", args=[cluster.name]))
    context = _cluster_context(membership, cluster, delete_form=form)
    return _cluster_form_errors(request, "delete-form", context)


# Activity


@require_GET
@login_required
def activity(request: AuthedRequest) -> HttpResponse:
    membership = _get_membership(request)
    paginator = Paginator(selectors.audit_entries_of(membership.team), ACTIVITY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return _page(request, "deployments/activity.html", {"membership": membership, "page": page})


# Apps


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers("HX-Request")
def app_new(request: AuthedRequest) -> HttpResponse:
    membership = _get_membership(request, write=request.method == "POST")
    clusters = selectors.ready_clusters_of(membership.team)
    only = list(clusters[:2])
    form = AppCreateForm(
        request.POST if request.method == "POST" else None,
        clusters=clusters,
        taken=selectors.apps_with_status(membership.team),
        initial={"cluster": only[0] if len(only) == 1 else None},
    )
    if request.method == "POST" and form.is_valid():
        try:
            app = services.app_create(
                team=membership.team, actor=request.user, ip_address=client_address(request),
                cluster=form.cleaned_data["cluster"], name=form.cleaned_data["name"],
                **form.app_settings(),
            )  # fmt: skip
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Created app {app.name}. Deploy an image to start it.")
            return _done(request, reverse("app", args=[app.name]))
    context = {"membership": membership, "form": form, "has_clusters": bool(only)}
    if request.method == "POST" and _wants_fragment(request):
        return _fragment(request, "deployments/app_new.html#app-form", context)
    return _page(request, "deployments/app_new.html", context)


def _app_context(
    membership: Membership,
    app: App,
    *,
    deploy_form: DeployForm | None = None,
    config_form: ConfigForm | None = None,
    secret_form: SecretForm | None = None,
    settings_form: AppUpdateForm | None = None,
    delete_form: AppDeleteForm | None = None,
) -> dict[str, Any]:
    context = _app_live_context(membership, app)
    live = context["live"]
    return context | {
        "deploy_form": deploy_form or DeployForm(initial={"image": live.image if live else ""}),
        "config_form": config_form or ConfigForm.for_app(app),
        "secret_names": sorted(app.secrets),
        "secret_form": secret_form or SecretForm(),
        "settings_form": settings_form or AppUpdateForm.for_app(app),
        "delete_form": delete_form or AppDeleteForm(name=app.name),
    }


def _app_live_context(membership: Membership, app: App) -> dict[str, Any]:
    """What the app's live part shows: the live release and the latest rollout."""
    rollout = selectors.app_rollout(app)
    return {
        "membership": membership,
        "app": app,
        "live": services.live_release(app),
        "rollout": rollout,
        "busy": rollout is not None and rollout.deployment.is_active,
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def app_detail(request: AuthedRequest, name: str) -> HttpResponse:
    """The app, its live release and its latest rollout, followed live while it is in flight
    (the live part alone, polled every few seconds, builds none of the page's forms)."""
    if _wants_fragment(request):
        membership, app = _get_app_for_user(request, name, select=selectors.app_plain)
        context = _app_live_context(membership, app)
        template = "deployments/app_detail.html#app-live"
        return _fragment(request, template, context, settled=not context["busy"])
    membership, app = _get_app_for_user(request, name)
    return _page(request, "deployments/app_detail.html", _app_context(membership, app))


def _app_form_errors(
    request: AuthedRequest, membership: Membership, app: App, partial: str, **forms: Any
) -> HttpResponse:
    context = _app_context(membership, app, **forms)
    if _wants_fragment(request):
        return _fragment(request, f"deployments/app_detail.html#{partial}", context)
    return _page(request, "deployments/app_detail.html", context)


def _submit_app_form(
    request: AuthedRequest, membership: Membership, app: App, form: ServiceForm, kind: str,
    save: Callable[[], str],
) -> HttpResponse:  # fmt: skip
    """Run `save` (a service call) when `form` is valid: the words it returns become the flash
    message, then the app's page; a refusal comes back on the form (the page's `<kind>_form`,
    its `<kind>-form` partial for HTMX)."""
    if form.is_valid():
        try:
            words = save()
        except ValidationError as error:
            form.add_service_error(error)
        except Conflict as conflict:
            form.add_error(None, str(conflict))
        else:
            messages.success(request, words)
            return _done(request, reverse("app", args=[app.name]))
    return _app_form_errors(request, membership, app, f"{kind}-form", **{f"{kind}_form": form})


@require_POST
@login_required
@vary_on_headers("HX-Request")
def app_deploy(request: AuthedRequest, name: str) -> HttpResponse:
    membership, app = _get_app_for_user(request, name, write=True)
    form = DeployForm(request.POST)

    def deploy() -> str:
        release = services.deployment_start(
            app=app, actor=request.user, ip_address=client_address(request), **form.cleaned_data
        ).release
        return f"Deploying {release.image} as {release.label}…"

    return _submit_app_form(request, membership, app, form, "deploy", deploy)


@require_POST
@login_required
@vary_on_headers("HX-Request")
def app_config(request: AuthedRequest, name: str) -> HttpResponse:
    membership, app = _get_app_for_user(request, name, write=True)
    form = ConfigForm(request.POST)

    def save_config() -> str:
        deployment = services.config_set(
            app=app, actor=request.user, ip_address=client_address(request),
            config_vars=form.cleaned_data["config_vars"],
        )  # fmt: skip
        return f"Saved the config vars as {deployment.release.label}; deploying it…"

    return _submit_app_form(request, membership, app, form, "config", save_config)


@require_POST
@login_required
@sensitive_post_parameters("value")
@vary_on_headers("HX-Request")
def app_secret_set(request: AuthedRequest, name: str) -> HttpResponse:
    """Add or replace a secret; on a refusal the form comes back with its value field empty."""
    membership, app = _get_app_for_user(request, name, write=True)
    form = SecretForm(request.POST)

    def save_secret() -> str:
        deployment = services.secret_set(
            app=app, actor=request.user, ip_address=client_address(request), **form.cleaned_data
        )
        secret, label = form.cleaned_data["name"], deployment.release.label
        return f"Saved the secret {secret} as {label}; deploying it…"

    return _submit_app_form(request, membership, app, form, "secret", save_secret)


@require_POST
@login_required
def app_secret_remove(request: AuthedRequest, name: str, secret: str) -> HttpResponse:
    """Remove a secret, confirmed on the app's page; the outcome is a flash message there."""
    _, app = _get_app_for_user(request, name, write=True)
    try:
        deployment = services.secret_unset(
            app=app, actor=request.user, name=secret, ip_address=client_address(request)
        )
    except (ValidationError, Conflict) as error:
        messages.error(request, _refusal(error))
    else:
        label = deployment.release.label
        messages.success(request, f"Removed the secret {secret} as {label}; deploying it…")
    return _done(request, reverse("app", args=[app.name]))


@require_POST
@login_required
@vary_on_headers("HX-Request")
def app_settings(request: AuthedRequest, name: str) -> HttpResponse:
    """Save the settings the form changed; with `deploy_now`, redeploy the live image with them."""
    membership, app = _get_app_for_user(request, name, write=True)
    form = AppUpdateForm(request.POST)
    changes = form.changes(app) if form.is_valid() else {}
    if form.is_valid() and not changes:
        form.add_error(None, "Nothing changed.")
    if changes:
        try:
            services.app_update(
                app=app, actor=request.user, ip_address=client_address(request), **changes
            )
        except ValidationError as error:
            form.add_service_error(error)
        except Conflict as conflict:
            form.add_error(None, str(conflict))
        else:
            messages.success(request, _settings_words(app, changes))
            if form.cleaned_data["deploy_now"]:
                _deploy_live_image(request, app, changes)
            return _done(request, reverse("app", args=[app.name]))
    return _app_form_errors(request, membership, app, "settings-form", settings_form=form)


# How a flash message names each setting and shows a value of it.
SETTING_WORDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "port": ("port", str),
    "health_check_path": ("health-check path", lambda path: path or "none"),
    "cpu": ("CPU", "{} units".format),
    "memory": ("memory", "{} MiB".format),
    "command": ("command", lambda command: Truncator(command).chars(60) or "the image's own"),
    "min_healthy_percent": ("minimum healthy %", str),
    "max_percent": ("maximum %", str),
    "circuit_breaker": ("circuit breaker", lambda on: "on" if on else "off"),
    "rollout_timeout_seconds": ("rollout timeout", duration),
}
# Each release snapshots these (services.release_config) into its task definition...
TASK_DEFINITION_SETTINGS = {"port", "health_check_path", "cpu", "memory", "command"}
# ...while each rollout sends these to ECS from the app (jobs._service_spec)...
ROLLING_UPDATE_SETTINGS = {"min_healthy_percent", "max_percent", "circuit_breaker"}
# ...and the tracker reads rollout_timeout_seconds on every tick.


def _settings_words(app: App, changes: dict[str, Any]) -> str:
    """What changed, from what, and when each change reaches ECS."""
    changed = ", ".join(_change_words(app, name, value) for name, value in changes.items())
    when = []
    if TASK_DEFINITION_SETTINGS & set(changes):
        when.append(
            "Task-definition settings take effect with the next release: a deploy, config or "
            "secret change (a rollback runs its release's own); running tasks keep the old ones."
        )
    if ROLLING_UPDATE_SETTINGS & set(changes):
        when.append("Rolling-update settings apply from the next rollout, rollbacks included.")
    if "rollout_timeout_seconds" in changes:
        when.append("The rollout timeout applies at once, also to a rollout in flight.")
    return " ".join([f"Saved {app.name}'s settings: {changed}.", *when])


def _change_words(app: App, name: str, value: Any) -> str:
    words, show = SETTING_WORDS[name]
    return f"{words} {show(value)} (was {show(getattr(app, name))})"


def _deploy_live_image(request: AuthedRequest, app: App, changes: dict[str, Any]) -> None:
    """Redeploy the live image: its new release snapshots the settings just saved. A refusal
    leaves them saved, for the next release."""
    live = services.live_release(app)
    if live is None:
        messages.warning(request, f"Nothing deployed: {app.name} has no live release yet.")
        return
    try:
        deployment = services.deployment_start(
            app=app, actor=request.user, image=live.image, ip_address=client_address(request),
            description=f"Settings change: {', '.join(SETTING_WORDS[n][0] for n in changes)}",
        )  # fmt: skip
    except (ValidationError, Conflict) as error:
        messages.warning(request, f"Not deployed: {_refusal(error)}")
    else:
        label = deployment.release.label
        messages.success(request, f"Deploying {live.image} with the new settings as {label}…")


@require_POST
@login_required
def deployment_cancel(request: AuthedRequest, name: str, pk: int) -> HttpResponse:
    _, app, deployment = _get_deployment_for_user(request, name, pk, write=True)
    try:
        rollback = services.deployment_cancel(
            deployment=deployment, actor=request.user, ip_address=client_address(request)
        )
    except Conflict as conflict:
        messages.error(request, str(conflict))
    else:
        cancelled = deployment.release.label
        if rollback is None:
            messages.warning(
                request, f"Cancelled {cancelled}; there is no earlier release to go back to."
            )
        else:
            messages.success(
                request, f"Cancelled {cancelled}; rolling back as {rollback.release.label}…"
            )
    return _done(request, reverse("app", args=[app.name]))


@require_POST
@login_required
@vary_on_headers("HX-Request")
def app_delete(request: AuthedRequest, name: str) -> HttpResponse:
    membership, app = _get_app_for_user(request, name, write=True)
    form = AppDeleteForm(request.POST, name=app.name)
    if form.is_valid():
        try:
            if not getattr(app, "deleting", False):
                services.app_delete(app=app, actor=request.user, ip_address=client_address(request))
        except Conflict as conflict:
            form.add_error(None, str(conflict))
        else:
            messages.success(
                request, f"Deleting {app.name}… It leaves the list once AWS has removed it."
            )
            return _done(request, reverse("overview"))
    return _app_form_errors(request, membership, app, "delete-form", delete_form=form)


@require_GET
@login_required
def app_releases(request: AuthedRequest, name: str) -> HttpResponse:
    membership, app = _get_app_for_user(request, name)
    live_version = getattr(app, "live_version", None)
    history = selectors.release_history(app, request.GET.get("page"), live_version)
    context = {"membership": membership, "app": app, "history": history, "page": history.page}
    return _page(request, "deployments/app_releases.html", context)


@require_POST
@login_required
def app_rollback(request: AuthedRequest, name: str, version: int) -> HttpResponse:
    """Roll back to `version`: confirmed on the releases page, then followed on the app's."""
    _, app = _get_app_for_user(request, name, write=True)
    try:
        deployment = services.app_rollback(
            app=app, actor=request.user, version=version, ip_address=client_address(request)
        )
    except (ValidationError, Conflict) as error:
        messages.error(request, _refusal(error))
        return _done(request, reverse("app_releases", args=[app.name]))
    label = deployment.release.label
    messages.success(request, f"Rolling back to v{version} as {label}…")
    return _done(request, reverse("app", args=[app.name]))


@require_GET
@login_required
@vary_on_headers("HX-Request")
def deployment_detail(request: AuthedRequest, name: str, pk: int) -> HttpResponse:
    membership, app, deployment = _get_deployment_for_user(request, name, pk)
    events = selectors.deployment_timeline(deployment)
    context = {
        "membership": membership,
        "app": app,
        "deployment": deployment,
        "events": events,
        "chart": selectors.rollout_chart(deployment, events),
    }
    if _wants_fragment(request):
        template = "deployments/deployment_detail.html#deployment-live"
        return _fragment(request, template, context, settled=not deployment.is_active)
    return _page(request, "deployments/deployment_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers("HX-Request")
def app_scaling(request: AuthedRequest, name: str) -> HttpResponse:
    """Tasks: autoscaling on CPU or a fixed count, applied to the ECS service by a job."""
    membership, app = _get_app_for_user(request, name, write=request.method == "POST")
    form = ScalingForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        try:
            services.scaling_update(
                app=app,
                actor=request.user,
                ip_address=client_address(request),
                **form.scaling_changes(),
            )
        except ValidationError as error:
            form.add_service_error(error)
        except Conflict as conflict:
            form.add_error(None, str(conflict))
        else:
            messages.success(request, _scaling_words(app))
            return _done(request, reverse("app_scaling", args=[app.name]))
    job = selectors.app_scaling_job(app)
    applying = job is not None and job.status in Job.ACTIVE_STATUSES
    context = {
        "membership": membership,
        "app": app,
        "scaling": app.scaling,
        "job": job,
        "applying": applying,
        "form": form or ScalingForm.for_app(app, app.scaling),
    }
    if _wants_fragment(request):
        if request.method == "POST":
            return _fragment(request, "deployments/app_scaling.html#scaling-form", context)
        template = "deployments/app_scaling.html#scaling-status"
        return _fragment(request, template, context, settled=not applying)
    return _page(request, "deployments/app_scaling.html", context)


def _scaling_words(app: App) -> str:
    if app.service_arn:
        return f"Saved; applying the new scaling to {app.name}'s ECS service…"
    return f"Saved; the scaling applies when {app.name} is first deployed."
