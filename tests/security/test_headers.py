"""Security headers on real responses of a production-configured process (DEBUG off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import json
from django.test import Client
client = Client()
page = client.get("/sign-in/", secure=True)
plain = client.get("/sign-in/")
print(json.dumps({
    "status": page.status_code,
    "headers": dict(page.headers),
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location", ""),
    "csrf_cookie_secure": bool(page.cookies["csrftoken"]["secure"]),
    "session_age": __import__("django.conf").conf.settings.SESSION_COOKIE_AGE,
}))
"""


def production_probe() -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if k != "DEBUG"} | {
        "DEBUG": "0",
        "SECRET_KEY": "x7#kP2vQ9mZr4Lw8Ny1Tb6Hc3Jd5Fg0Se-Ua7Vi2Ox9Ql4Mn8Kp1Rz",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_production_responses_carry_every_protection() -> None:
    probe = production_probe()
    headers = probe["headers"]
    assert isinstance(headers, dict)

    assert probe["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert probe["plain_status"] == 301
    assert str(probe["plain_location"]).startswith("https://")
    assert probe["csrf_cookie_secure"] is True
    assert probe["session_age"] == 8 * 60 * 60  # a working day
