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
]
