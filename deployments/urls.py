from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from deployments import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path(
        "sign-in/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("sign-out/", auth_views.LogoutView.as_view(), name="logout"),
    path("team/", views.team_switch, name="team_switch"),
    path("accounts/", views.accounts, name="accounts"),
    path("accounts/sandbox", views.account_connect_sandbox, name="account_connect_sandbox"),
    path("accounts/connect", views.account_connect, name="account_connect"),
    path("accounts/<str:name>/", views.account_detail, name="account"),
    path("accounts/<str:name>/verify", views.account_verify, name="account_verify"),
    path("clusters/new", views.cluster_new, name="cluster_new"),
    path("clusters/<str:name>/", views.cluster_detail, name="cluster"),
    path("clusters/<str:name>/resize", views.cluster_resize, name="cluster_resize"),
    path("clusters/<str:name>/retry", views.cluster_retry, name="cluster_retry"),
    path("clusters/<str:name>/delete", views.cluster_delete, name="cluster_delete"),
    path("activity/", views.activity, name="activity"),
]
