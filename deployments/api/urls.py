"""Routes of the JSON API, mounted at /api/v1/: the NinjaAPI's, then a JSON 404 for the rest."""

from __future__ import annotations

from django.urls import re_path

from deployments.api.api import api_urls, not_found

app_name = "api"

urlpatterns = [
    *api_urls(),
    # Last: anything else under the API is a JSON 404 (not documented: it is not an endpoint).
    # (?s:…): a path with an encoded newline is unknown too, not Django's HTML 404.
    re_path(r"^(?P<path>(?s:.*))\Z", not_found, name="not-found"),
]
