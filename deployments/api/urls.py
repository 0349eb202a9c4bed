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
    path("apps", views.apps, name="apps"),
    path("apps/<str:name>", views.app, name="app"),
    path("apps/<str:name>/deploys", views.app_deploys, name="app-deploys"),
    path("apps/<str:name>/releases", views.app_releases, name="app-releases"),
    path("apps/<str:name>/rollback", views.app_rollback, name="app-rollback"),
    path("apps/<str:name>/config", views.app_config, name="app-config"),
    path("apps/<str:name>/secrets/<str:secret_name>", views.app_secret, name="app-secret"),
    path("apps/<str:name>/scaling", views.app_scaling, name="app-scaling"),
    path("deployments/<int:id>", views.deployment, name="deployment"),
    path("deployments/<int:id>/cancel", views.deployment_cancel, name="deployment-cancel"),
    # Last: anything else under the API is a JSON 404 (not documented: it is not an endpoint).
    re_path(r"^(?P<path>.*)$", views.not_found, name="not-found"),
]
