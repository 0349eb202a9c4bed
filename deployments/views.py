from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from deployments import selectors
from deployments.models import Membership

TEAM_SESSION_KEY = "team"


class AuthedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails


def _current_membership(request: AuthedRequest) -> Membership | None:
    return selectors.membership_for(request.user, request.session.get(TEAM_SESSION_KEY))


@require_GET
@login_required
def overview(request: AuthedRequest) -> HttpResponse:
    membership = _current_membership(request)
    context = {
        "membership": membership,
        "overview": selectors.overview_for(membership) if membership else None,
    }
    return render(request, "deployments/overview.html", context)
