from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from deployments import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("sign-in/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("sign-out/", auth_views.LogoutView.as_view(), name="logout"),
    path("team/", views.team_switch, name="team_switch"),
    path("accounts/", views.accounts, name="accounts"),
    path("accounts/sandbox", views.account_connect_sandbox, name="account_connect_sandbox"),
    path("accounts/connect", views.account_connect, name="account_connect"),
    path("accounts/tokens", views.api_token_create, name="api_token_create"),
    path("accounts/tokens/<int:pk>/revoke", views.api_token_revoke, name="api_token_revoke"),
    path("accounts/<str:name>/", views.account_detail, name="account"),
    path("accounts/<str:name>/verify", views.account_verify, name="account_verify"),
    path("clusters/new", views.cluster_new, name="cluster_new"),
    path("clusters/<str:name>/", views.cluster_detail, name="cluster"),
    path("clusters/<str:name>/resize", views.cluster_resize, name="cluster_resize"),
    path("clusters/<str:name>/retry", views.cluster_retry, name="cluster_retry"),
    path("clusters/<str:name>/delete", views.cluster_delete, name="cluster_delete"),
    path("activity/", views.activity, name="activity"),
    path("apps/new", views.app_new, name="app_new"),
    path("apps/<str:name>/", views.app_detail, name="app"),
    path("apps/<str:name>/deploy", views.app_deploy, name="app_deploy"),
    path("apps/<str:name>/config", views.app_config, name="app_config"),
    path("apps/<str:name>/secrets", views.app_secret_set, name="app_secret_set"),
    path(
        "apps/<str:name>/secrets/<str:secret>/remove",
        views.app_secret_remove,
        name="app_secret_remove",
    ),
    path("apps/<str:name>/settings", views.app_settings, name="app_settings"),
    path("apps/<str:name>/delete", views.app_delete, name="app_delete"),
    path("apps/<str:name>/releases/", views.app_releases, name="app_releases"),
    path(
        "apps/<str:name>/releases/<int:version>/rollback",
        views.app_rollback,
        name="app_rollback",
    ),
    path("apps/<str:name>/scaling/", views.app_scaling, name="app_scaling"),
    path("apps/<str:name>/deployments/<int:pk>/", views.deployment_detail, name="deployment"),
    path(
        "apps/<str:name>/deployments/<int:pk>/cancel",
        views.deployment_cancel,
        name="deployment_cancel",
    ),
]
