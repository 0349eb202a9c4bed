"""Routes of the JSON API; mounted at /api/v1/. Every route here is described in openapi.py."""

from __future__ import annotations

from django.urls import path, re_path

from deployments.api import views

app_name = "api"

urlpatterns = [
    path("openapi.json", views.openapi_json, name="openapi"),
    path("accounts", views.accounts, name="accounts"),
    path("clusters", views.clusters, name="clusters"),
    path("clusters/<str:name>", views.cluster, name="cluster"),
    # Last: anything else under the API is a JSON 404 (not documented: it is not an endpoint).
    re_path(r"^(?P<path>.*)$", views.not_found, name="not-found"),
]
