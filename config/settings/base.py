"""Settings shared by every environment. The environment is read here, through config.env."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_float,
    env_int,
    env_json_map,
    env_list,
    env_networks,
    env_secret_keys,
    env_str,
)
from core.logs import logging_config
from core.roles import ALL_ROLES, Role

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("RELEASEGATE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-local-development-key-not-for-production")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "csp",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "rules.apps.AutodiscoverRulesConfig",
    "core",
    "releases",
    "governance",
    "pipelines",
    "dashboards",
]

# Browser-only middleware steps aside for cookieless calls under /api/v1/ (CI, CD, webhooks):
# config/middleware.py, "the machine path". CSRF and frame options stay as they are (cheap,
# and what `check --deploy` looks for by name).
MIDDLEWARE = [
    # Marks a cookieless call under /api/v1/ (config/middleware.py, "the machine path").
    "config.middleware.MachinePathMiddleware",
    # First and last: HTTP metrics around everything else (docs/operations.md, "Metrics").
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # The request id (X-Request-ID) on every log line and answer, and one line per request.
    "core.logs.RequestLogMiddleware",
    # /metrics for Prometheus, before the host check and the HTTPS redirect (config/metrics.py).
    "config.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.BrowserOnlyPermissionsPolicyMiddleware",
    "config.middleware.BrowserOnlyCSPMiddleware",
    "config.middleware.ApiNoStoreMiddleware",
    "config.middleware.BrowserOnlyWhiteNoiseMiddleware",
    "config.middleware.BrowserOnlySessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.BrowserOnlyAuthenticationMiddleware",
    "config.middleware.BrowserOnlyMessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # After authentication: a user whose role requires MFA enrols before anything else (a
    # machine call has no signed-in user and passes).
    "core.middleware.MfaEnrolmentMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.BrowserOnlyHtmxMiddleware",
    "core.middleware.AuditContextMiddleware",
    # Pages render in the viewer's time zone (their profile's; the API stays in UTC).
    "core.profiles.TimeZoneMiddleware",
    # Last but one, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "core.context_processors.accounts",
            ],
            # Every date and time on every page in one format, in the viewer's zone.
            "builtins": ["core.templatetags.dates"],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'releasegate.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server, worker and beat share the embedded database.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# A persistent connection idle longer than this is probed before reuse (core/dbhealth.py).
DB_HEALTH_CHECK_IDLE_SECONDS = env_float("DB_HEALTH_CHECK_IDLE_SECONDS", 5.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out user or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
    # The backend allauth logs a single sign-on user in with (it needs no password).
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "releases:list"
LOGOUT_REDIRECT_URL = "login"

# Login protection (django-axes), for the login page and the admin alike: after
# LOGIN_FAILURE_LIMIT wrong passwords a username is locked, and so is the address they came
# from (each counted on its own), for LOGIN_COOLOFF_MINUTES; a good login resets the count.
# Unlocking early is an audited action (core.accounts.account_unlock: the admin's "Unlock"
# action on access attempts, or `manage.py unlock_account`).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

# Single sign-on (OpenID Connect through django-allauth; docs/operations.md "Single sign-on").
# It is on when OIDC_SERVER_URL and OIDC_CLIENT_ID are set: the login page (and the admin,
# whose login is the same page) offers "Sign in with OIDC_PROVIDER_NAME". Every SSO login
# sets the user's roles to what OIDC_GROUP_ROLE_MAP maps their IdP groups to (the groups are
# read from the OIDC_GROUPS_CLAIM claim), and their membership of the teams OIDC_GROUP_TEAM_MAP
# names; both audited (core.sso.sso_login_sync).
OIDC_PROVIDER_ID = env_str("OIDC_PROVIDER_ID", "sso")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_SERVER_URL = env_str("OIDC_SERVER_URL", "")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
OIDC_SCOPES = env_list("OIDC_SCOPES", ["openid", "profile", "email"])
OIDC_PKCE_ENABLED = env_bool("OIDC_PKCE_ENABLED", True)
OIDC_TOKEN_AUTH_METHOD = env_str("OIDC_TOKEN_AUTH_METHOD", "")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# {"idp group": "role" or ["role", ...]} and {"idp group": "team-slug" or [...]}.
OIDC_GROUP_ROLE_MAP = env_json_map("OIDC_GROUP_ROLE_MAP")
OIDC_GROUP_TEAM_MAP = env_json_map("OIDC_GROUP_TEAM_MAP")
for _group, _roles in OIDC_GROUP_ROLE_MAP.items():
    for _role in [_roles] if isinstance(_roles, str) else _roles:
        if _role not in ALL_ROLES:
            raise ImproperlyConfigured(
                f"OIDC_GROUP_ROLE_MAP maps {_group!r} to {_role!r}, which is not a role "
                f"({', '.join(ALL_ROLES)})."
            )
OIDC_ENABLED = bool(OIDC_SERVER_URL and OIDC_CLIENT_ID)
# The "Sign in with …" button posts to us and is redirected to the IdP's authorization
# endpoint, which the Content-Security-Policy's form-action must allow: the IdP's origin (from
# OIDC_SERVER_URL), and OIDC_AUTHORIZATION_ORIGINS when its authorization endpoint is elsewhere.
OIDC_AUTHORIZATION_ORIGINS = env_list("OIDC_AUTHORIZATION_ORIGINS", [])
if OIDC_ENABLED:
    _idp = urlsplit(OIDC_SERVER_URL)
    if _idp.scheme not in ("http", "https") or not _idp.netloc:
        raise ImproperlyConfigured(f"OIDC_SERVER_URL must be an http(s) URL: {OIDC_SERVER_URL!r}")
    OIDC_AUTHORIZATION_ORIGINS = [f"{_idp.scheme}://{_idp.netloc}", *OIDC_AUTHORIZATION_ORIGINS]

# LOCAL_PASSWORDS_ENABLED=false: nobody signs in with a local password (login page, admin,
# password reset and change) except a superuser, as break-glass, with every such login audited.
LOCAL_PASSWORDS_ENABLED = env_bool("LOCAL_PASSWORDS_ENABLED", True)

# MFA (allauth.mfa: TOTP authenticator apps and WebAuthn security keys). A user holding any of
# MFA_REQUIRED_ROLES is sent to enrol before using the app. The default: everyone who approves
# (the sign-off roles), the CAB and administrators. local.py and test.py default to none.
MFA_REQUIRED_ROLES = env_list(
    "MFA_REQUIRED_ROLES",
    [
        role.value
        for role in (
            Role.RELEASE_MANAGER,
            Role.QA_LEAD,
            Role.SECURITY_LEAD,
            Role.OPERATIONS,
            Role.PRODUCT_OWNER,
            Role.CAB_MEMBER,
            Role.CAB_CHAIR,
            Role.ADMINISTRATOR,
        )
    ],
)
for _role in MFA_REQUIRED_ROLES:
    if _role not in ALL_ROLES:
        raise ImproperlyConfigured(f"MFA_REQUIRED_ROLES names {_role!r}, which is not a role.")
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Releasegate")
# Accept the code of the 30-second step before or after too (a phone's clock drifts).
MFA_TOTP_TOLERANCE = 1
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env_bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", False)
# E-mail addresses are not how anyone signs in here, and many IdPs (Entra) send no
# email_verified claim: an unverified address must not keep a user from enrolling.
MFA_ALLOW_UNVERIFIED_EMAIL = True

# django-allauth: only what the features above use. Local sign-up is closed (core.sso's
# adapter); an SSO user is created on first login (auto sign-up) and never linked to a local
# account by e-mail, which the IdP might not have verified.
ACCOUNT_ADAPTER = "core.sso.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "core.sso.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_REDIRECT_URL = LOGOUT_REDIRECT_URL
# Addresses need not be unique: a local account with the same address as an SSO user's
# must neither be taken over nor send the SSO user to a sign-up form to pick another one.
ACCOUNT_UNIQUE_EMAIL = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "SCOPE": OIDC_SCOPES,
        "APPS": (
            [
                {
                    "provider_id": OIDC_PROVIDER_ID,
                    "name": OIDC_PROVIDER_NAME,
                    "client_id": OIDC_CLIENT_ID,
                    "secret": OIDC_CLIENT_SECRET,
                    "settings": {
                        "server_url": OIDC_SERVER_URL,
                        "oauth_pkce_enabled": OIDC_PKCE_ENABLED,
                        **(
                            {"token_auth_method": OIDC_TOKEN_AUTH_METHOD}
                            if OIDC_TOKEN_AUTH_METHOD
                            else {}
                        ),
                    },
                }
            ]
            if OIDC_ENABLED
            else []
        ),
    }
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "pipelines.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Releasegate API",
    "DESCRIPTION": "Release planning and governance: releases, gates, change requests, "
    "pipeline runs and deployments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.document_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "LikelihoodEnum": "releases.choices.Likelihood",
        "RiskLevelEnum": "releases.choices.RiskLevel",
        "ReleaseStateEnum": "releases.choices.ReleaseState",
        "RunStatusEnum": "pipelines.models.RunStatus",
        "DeploymentReportStatusEnum": "pipelines.api.validation.DEPLOYMENT_STATUSES",
        "GateStatusEnum": "governance.choices.GateStatus",
        "ChangeStateEnum": "governance.choices.ChangeState",
        "MeetingStateEnum": "governance.choices.MeetingState",
        "FreezeExceptionStateEnum": "governance.choices.ExceptionState",
        "PolicyChangeRequestEnum": "governance.choices.PolicyChangeRequest",
        "BreakGlassKindEnum": "governance.choices.BreakGlassKind",
    },
}

# Break-glass (docs/break-glass.md): the roles that may override a freeze for a rollback or a
# hotfix, the longest override, and the shortest reason accepted.
BREAK_GLASS_ROLES = env_list("BREAK_GLASS_ROLES", ["release_manager", "administrator"])
BREAK_GLASS_MAX_HOURS = env_int("BREAK_GLASS_MAX_HOURS", 4)
BREAK_GLASS_MIN_REASON_LENGTH = env_int("BREAK_GLASS_MIN_REASON_LENGTH", 20)
_known_roles = {
    "release_manager",
    "qa_lead",
    "security_lead",
    "operations",
    "product_owner",
    "cab_member",
    "cab_chair",
    "stakeholder",
    "administrator",
}
if not BREAK_GLASS_ROLES or set(BREAK_GLASS_ROLES) - _known_roles:
    raise ImproperlyConfigured(
        "BREAK_GLASS_ROLES must list roles among: " + ", ".join(sorted(_known_roles)) + "."
    )
if BREAK_GLASS_MAX_HOURS < 1 or BREAK_GLASS_MIN_REASON_LENGTH < 1:
    raise ImproperlyConfigured("BREAK_GLASS_MAX_HOURS and …_MIN_REASON_LENGTH must be ≥ 1.")

# Machine ingestion (pipelines app): the largest body a CI/CD system may post, the requests
# one token may make per window (HTTP 429 beyond), and how long a token lookup is cached.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 256 * 1024)
INGEST_RATE_LIMIT = env_int("INGEST_RATE_LIMIT", 600)
# The create statement of an ingested run is prepared once per connection (PostgreSQL); switch
# off behind a pooler in transaction mode (PgBouncer < 1.21), which cannot keep it.
INGEST_PREPARED_STATEMENTS = env_bool("INGEST_PREPARED_STATEMENTS", True)
INGEST_RATE_WINDOW_SECONDS = env_int("INGEST_RATE_WINDOW_SECONDS", 60)
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 30)
# The most alerts one Alertmanager delivery may carry (more is a 400 that writes nothing; set
# max_alerts in the receiver's webhook_config to match).
ALERTMANAGER_MAX_ALERTS = env_int("ALERTMANAGER_MAX_ALERTS", 100)
# Accepted runs are sent to gate evaluation in batches this often (0: one task per run, on
# commit, in the request).
PIPELINES_GATE_BATCH_SECONDS = float(env_str("PIPELINES_GATE_BATCH_SECONDS", "0.2"))
# A deployment held at a GitHub/GitLab gate while the check says "wait" is asked again this
# often (sooner when the blockers clear earlier), until its integration's timeout.
PIPELINES_GATE_RECHECK_SECONDS = env_int("PIPELINES_GATE_RECHECK_SECONDS", 30)
# Retention of pipeline runs and webhook deliveries (docs/operations.md, "Data retention").
# A run is pruned when it is older than PIPELINE_RUNS_KEEP_DAYS *and* not among the newest
# PIPELINE_RUNS_KEEP_PER_SERVICE of its service (0 turns a rule off; both 0: runs are kept).
# Runs a release's evidence refers to are never pruned. Deliveries (the duplicate guard of
# webhooks) are kept WEBHOOK_DELIVERIES_KEEP_DAYS (0: forever). Beat prunes at most
# PIPELINE_PRUNE_MAX_BATCHES batches of PIPELINE_PRUNE_BATCH_SIZE rows per run.
PIPELINE_RUNS_KEEP_DAYS = env_int("PIPELINE_RUNS_KEEP_DAYS", 180)
PIPELINE_RUNS_KEEP_PER_SERVICE = env_int("PIPELINE_RUNS_KEEP_PER_SERVICE", 200)
WEBHOOK_DELIVERIES_KEEP_DAYS = env_int("WEBHOOK_DELIVERIES_KEEP_DAYS", 30)
PIPELINE_PRUNE_BATCH_SIZE = env_int("PIPELINE_PRUNE_BATCH_SIZE", 1000)
PIPELINE_PRUNE_MAX_BATCHES = env_int("PIPELINE_PRUNE_MAX_BATCHES", 20)
for _name in (
    "PIPELINE_RUNS_KEEP_DAYS",
    "PIPELINE_RUNS_KEEP_PER_SERVICE",
    "WEBHOOK_DELIVERIES_KEEP_DAYS",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 (off) or a positive number.")
if PIPELINE_PRUNE_BATCH_SIZE < 1 or PIPELINE_PRUNE_MAX_BATCHES < 1:
    raise ImproperlyConfigured("PIPELINE_PRUNE_BATCH_SIZE and …_MAX_BATCHES must be ≥ 1.")
# Mounts the ingest benchmark's baseline view (benchmarks/ingest.py); never in production.
RELEASEGATE_BENCHMARK_BASELINE = env_bool("RELEASEGATE_BENCHMARK_BASELINE", False)

# Celery. The embedded default is kombu's filesystem broker, so `make run` needs no Redis;
# its "in" and "out" folders must be the same folder or messages are never seen.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost//"
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Longer than any countdown or ETA we use, so Redis never redelivers a task that is
    # merely waiting for its time.
    # CELERY_VISIBILITY_TIMEOUT: the fault tests shorten it to see a redelivery quickly.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 60 * 60)
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Workers (docs/workers.md): polling concurrency (threads, and per provider host), how long a
# notification being sent is left to its worker, webhook timeout, absolute links in messages.
POLL_CONCURRENCY = env_int("POLL_CONCURRENCY", 32)
POLL_PER_HOST = env_int("POLL_PER_HOST", 8)
NOTIFICATION_SEND_LEASE_SECONDS = env_int("NOTIFICATION_SEND_LEASE_SECONDS", 120)
NOTIFICATION_WEBHOOK_TIMEOUT = env_int("NOTIFICATION_WEBHOOK_TIMEOUT", 10)
SITE_URL = env_str("SITE_URL", "http://localhost:8000")
# Outbound HTTP to URLs people typed (webhooks, CI pollers, Prometheus; core/outbound.py):
# private, loopback and link-local destinations are refused unless allowed here (all of them,
# or just the listed CIDRs, e.g. the internal Jenkins subnet). local.py and test.py allow them.
OUTBOUND_ALLOW_PRIVATE = env_bool("OUTBOUND_ALLOW_PRIVATE", False)
OUTBOUND_ALLOWED_NETWORKS = env_networks("OUTBOUND_ALLOWED_NETWORKS")

CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that does not answer costs a request at most this long once per fuse
            # period (core/shared_cache.py), not a worker's whole timeout.
            "OPTIONS": {
                "socket_connect_timeout": env_float("REDIS_SOCKET_TIMEOUT", 1.0),
                "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT", 1.0),
            },
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# The audit trail's keys (core/audit_keys.py, docs/operations.md "Audit trail keys"): chain
# hashes and checkpoints are HMAC-SHA256 with a secret the database does not hold.
# AUDIT_CHAIN_KEYS lists every key still needed to verify (id:base64, comma-separated);
# new events use AUDIT_CHAIN_KEY_ID (default: the first listed). production.py requires them;
# elsewhere a fixed development key stands in, which protects nothing.
AUDIT_CHAIN_KEYS = env_secret_keys("AUDIT_CHAIN_KEYS") or {
    "dev": b"releasegate-development-audit-key-not-a-secret"
}
AUDIT_CHAIN_KEY_ID = env_str("AUDIT_CHAIN_KEY_ID") or next(iter(AUDIT_CHAIN_KEYS))
if AUDIT_CHAIN_KEY_ID not in AUDIT_CHAIN_KEYS:
    raise ImproperlyConfigured(
        f"AUDIT_CHAIN_KEY_ID is {AUDIT_CHAIN_KEY_ID!r}, which AUDIT_CHAIN_KEYS does not list."
    )
# Signed checkpoints of every chain head are also written here, one JSON file each, outside
# the database (a volume the database's owner cannot rewrite; docs/operations.md).
AUDIT_CHECKPOINT_DIR = Path(env_str("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "audit-checkpoints")))
# ... and, if a bucket is named, copied to an S3-compatible bucket by the beat task (and read
# back by verify_audit). Credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID, ...);
# the endpoint URL is for S3-compatible stores (MinIO, Ceph, ...).
AUDIT_CHECKPOINT_S3_BUCKET = env_str("AUDIT_CHECKPOINT_S3_BUCKET", "")
AUDIT_CHECKPOINT_S3_PREFIX = env_str("AUDIT_CHECKPOINT_S3_PREFIX", "audit-checkpoints/")
AUDIT_CHECKPOINT_S3_ENDPOINT_URL = env_str("AUDIT_CHECKPOINT_S3_ENDPOINT_URL", "") or None

# Response headers a browser enforces. Every asset is served by the app, htmx needs no eval and
# the templates carry no inline script or style, so the policy is 'self' throughout; the one
# inline stylesheet (the evidence pack's summary.html) is a file inside the ZIP, never served.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, *OIDC_AUTHORIZATION_ORIGINS],
        "frame-ancestors": [NONE],
    }
}
# No page uses a device or sensor API; deny them all to this origin and any frame.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "releasegate@localhost")

# Prometheus /metrics (docs/operations.md, "Metrics"): off (404) unless a bearer token and/or
# the networks allowed to scrape are set; with both, a scrape needs both. Gauges read from the
# database are cached this many seconds per process.
METRICS_TOKEN = env_str("METRICS_TOKEN", "") or ""
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS")
METRICS_GAUGES_CACHE_SECONDS = env_float("METRICS_GAUGES_CACHE_SECONDS", 10.0)
# A Celery worker serves its own counters on this port (0: off), behind the same rule. With
# the prefork pool, set PROMETHEUS_MULTIPROC_DIR for the worker too so its processes add up.
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0)
CELERY_METRICS_ADDRESS = env_str("CELERY_METRICS_ADDRESS", "0.0.0.0")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters long.")

# Logs (docs/operations.md, "Logs"): LOG_FORMAT=json writes one JSON object per line with the
# request id, task id and acting user; text (the default here, `make run`) is for people.
# Production defaults to json.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}.")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
