"""The dashboard's pages: parse, authorize (one helper per object kind), call a service, render.

A URL that serves a page answers an HTMX request with the live part of it, a template partial;
a fragment that is being polled answers 286 (stop polling) once what it follows has settled.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from deployments import selectors, services
from deployments.forms import (
    AssumeRoleAccountForm,
    ClusterCreateForm,
    ClusterDeleteForm,
    ClusterResizeForm,
)
from deployments.models import AwsAccount, Cluster, Membership, name_validator

TEAM_SESSION_KEY = "team"
ACTIVITY_PAGE_SIZE = 50


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


def _ip(request: AuthedRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


# Overview and team


@require_GET
@login_required
@vary_on_headers("HX-Request")
def overview(request: AuthedRequest) -> HttpResponse:
    membership = _current_membership(request)
    overview = selectors.overview_for(membership) if membership else None
    clusters = overview.clusters if overview else []
    busy = any(cluster.status in selectors.CLUSTER_BUSY_STATUSES for cluster in clusters)
    # An empty overview leads to the next step: an account first, then a cluster on it.
    has_accounts = bool(clusters) or (
        membership is not None and selectors.accounts_of(membership.team).exists()
    )
    context = {
        "membership": membership,
        "overview": overview,
        "busy": busy,
        "has_accounts": has_accounts,
    }
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
    membership: Membership, form: AssumeRoleAccountForm | None = None
) -> dict[str, Any]:
    rows = selectors.account_rows(membership.team)
    return {
        "membership": membership,
        "rows": rows,
        "verifying": any(row.verifying for row in rows),
        "form": form or AssumeRoleAccountForm(taken=selectors.accounts_of(membership.team)),
    }


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
            ip_address=_ip(request),
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
                ip_address=_ip(request),
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
    verifying = job is not None and job.status in selectors.JOB_ACTIVE_STATUSES
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
        "account_placeholder": selectors.TINYSTACKS_ACCOUNT_PLACEHOLDER,
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
                    team=membership.team, actor=request.user, ip_address=_ip(request), **fields
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
    job_running = job is not None and job.status in selectors.JOB_ACTIVE_STATUSES
    steps = selectors.cluster_steps(cluster)
    return {
        "membership": membership,
        "cluster": cluster,
        "job": job,
        "busy": cluster.status in selectors.CLUSTER_BUSY_STATUSES or job_running,
        "steps": steps,
        "steps_done": sum(step.status == "done" for step in steps),
        "resources": selectors.cluster_resources(cluster),
        "zones": selectors.cluster_zones(cluster),
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
        return _fragment(request, template, context, settled=not context["busy"])
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
                cluster=cluster, actor=request.user, ip_address=_ip(request), **form.cleaned_data
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
        services.cluster_retry(cluster=cluster, actor=request.user, ip_address=_ip(request))
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
            services.cluster_delete(cluster=cluster, actor=request.user, ip_address=_ip(request))
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
