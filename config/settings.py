"""Settings, read from the environment. Every variable is optional; see README."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# The demo key is only for a machine nobody else reaches: with DEBUG off it is a system
# check error (config/checks.py), so nothing starts with it.
DEVELOPMENT_SECRET_KEY = "modelgov-insecure-development-key"  # noqa: S105 (refused outside DEBUG)
SECRET_KEY = os.environ.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "guardian",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "audits",
    "registry",
    "governance",
    "config.apps.ServiceConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audits.middleware.AuditContextMiddleware",
    "config.middleware.chunked_bodies_refused",
    "config.middleware.nul_characters_refused",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: turns the answer to a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every transaction take SQLite's write lock up front, so two
    # writers queue instead of one failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # Django's backend, whose per-request health check skips the round trip when the
    # connection's socket shows the server has not dropped it; see the module.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    # Parameters bound by the server, and statements a connection runs often
    # (authentication, registration, the audit append) prepared once per connection
    # instead of planned on every call. Behind a pooler without prepared-statement
    # support (PgBouncer before 1.21 in transaction mode), set DB_PREPARE_THRESHOLD=off.
    threshold = os.environ.get("DB_PREPARE_THRESHOLD", "5").strip().lower()
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": None if threshold in ("", "off", "none") else int(threshold),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out username or address is refused before any password
    # is checked. It needs the request: authenticate(request=...).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous callers get 401 before any permission check.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# The largest evaluation CSV accepted (bytes).
EVALUATION_MAX_BYTES = int(os.environ.get("EVALUATION_MAX_BYTES", 200 * 1024 * 1024))
EVALUATION_MAX_ROWS = int(os.environ.get("EVALUATION_MAX_ROWS", 20_000_000))
# Requests larger than this are refused with 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440))

# HTTPS behaviour is switched on explicitly, never implied by DEBUG=false, so the
# service still answers plain HTTP on loopback behind a TLS-terminating proxy.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# How many proxies in front of the service append to X-Forwarded-For; 0 trusts none
# and the audit trail records REMOTE_ADDR.
AUDIT_TRUSTED_PROXIES = int(os.environ.get("AUDIT_TRUSTED_PROXIES", "0"))
# Failed sign-ins (django-axes). After AXES_FAILURE_LIMIT failures for one username, or
# from one address, further attempts are refused before any password is checked, until
# AXES_COOLOFF_MINUTES pass without another; a sign-in resets both counts. The address
# is the one the audit records, so forwarded headers count only from trusted proxies.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "governance.sign_in.client_address"
AXES_HANDLER = "governance.sign_in.SignInAttemptHandler"
AXES_LOCKOUT_CALLABLE = "governance.sign_in.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Refused attempts are counted too (they keep the lockout on while they go on) and each
# lands in the failure log, which is how the admin shows them.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Successful sign-ins are in the audit log already.
AXES_DISABLE_ACCESS_LOG = True
# governance registers axes' screens itself, read-only but for superusers.
AXES_ENABLE_ADMIN = False
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
# API tokens: the life of a new token when its creator names none, the longest one may
# name (days), and how often each process records a token's last use (seconds): uses
# in between cost no write.
API_TOKEN_LIFETIME_DAYS = int(os.environ.get("API_TOKEN_LIFETIME_DAYS", "90"))
API_TOKEN_MAX_LIFETIME_DAYS = int(os.environ.get("API_TOKEN_MAX_LIFETIME_DAYS", "365"))
API_TOKEN_LAST_USE_INTERVAL = int(os.environ.get("API_TOKEN_LAST_USE_INTERVAL", "60"))
# Folders whose file:// artifacts the integrity check may open (os.pathsep-separated).
ARTIFACT_ROOTS = [p for p in os.environ.get("ARTIFACT_ROOTS", "").split(os.pathsep) if p]
# The largest artifact the integrity check digests; a larger one ends `unverified`
# rather than hold a worker for the minutes reading it would take.
INTEGRITY_MAX_BYTES = int(os.environ.get("INTEGRITY_MAX_BYTES", 10 * 1024**3))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.problems.exception_handler",
    # DRF's three, with a JSON parser that bounds nesting (config/json_input.py).
    "DEFAULT_PARSER_CLASSES": [
        "config.json_input.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # `format` is a query parameter of the audit export; DRF must not read it.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per user, on the calls that cost the most: a verification recomputes the whole
    # chain, an export (the access review too) streams it, a checkpoint signs and
    # appends. Views name their scope; the counts live in the cache (CACHES below).
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "audit_verify": os.environ.get("AUDIT_VERIFY_RATE", "6/min"),
        "audit_export": os.environ.get("AUDIT_EXPORT_RATE", "60/hour"),
        "audit_checkpoint": os.environ.get("AUDIT_CHECKPOINT_RATE", "30/hour"),
    },
}
# With Redis, every web process counts a user's requests together; without it, each
# process keeps its own count (Django's local memory cache), so a limit is per process.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            # A Redis that stops answering fails the throttled calls quickly, not hangs them.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }

SPECTACULAR_SETTINGS = {
    "TITLE": "modelgov API",
    "DESCRIPTION": "Model registry, promotion governance and a hash-chained audit trail. "
    "Errors are application/problem+json (RFC 9457). No text may hold a NUL character "
    "(U+0000): one is refused wherever it appears.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Request bodies are documented as JSON; the form parsers serve the browsable API.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # 3.1 for JSON Schema's propertyNames (tag names), and request bodies as their own
    # components: what a client may send is not what it reads back.
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    # A version's stage and a promotion's from_stage are one set of choices.
    "ENUM_NAME_OVERRIDES": {"StageEnum": "registry.models.Stage"},
}

# Celery: without a broker, tasks run in-process; services dispatch them on commit.
BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
CELERY_BROKER_URL = BROKER_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# A publish to a broker that is down gives up quickly: the run stays queued and the
# sweep dispatches it again once the broker is back.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # An unacknowledged task (its worker died) is delivered again after this long.
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
}

# Promotion gates: per-run limits, and when the sweep steps in.
CHECK_SOFT_TIME_LIMIT = int(os.environ.get("CHECK_SOFT_TIME_LIMIT", "600"))
CHECK_TIME_LIMIT = int(os.environ.get("CHECK_TIME_LIMIT", "660"))
CHECK_MAX_ATTEMPTS = int(os.environ.get("CHECK_MAX_ATTEMPTS", "3"))
# A check's results larger than this (bytes of canonical JSON) are kept by the check run
# alone; its audit event holds their SHA-256 and size instead of a copy.
CHECK_RESULTS_INLINE_BYTES = int(os.environ.get("CHECK_RESULTS_INLINE_BYTES", "32768"))
# A queued run older than this is dispatched again (its message may have been lost).
CHECK_REDISPATCH_AFTER = int(os.environ.get("CHECK_REDISPATCH_AFTER", "120"))
# A request whose checks have not all finished this long after they started fails.
CHECK_DEADLINE = int(os.environ.get("CHECK_DEADLINE", "3600"))

# Audit exports, signing and checkpoints.
# The function that names the models an owner may read the audit events of: audits
# knows no other app, so the one that knows ownership is named here.
AUDIT_MODEL_SCOPE = "governance.audit_scope.owned_model_names"
# A PDF report is built in memory; larger selections export as jsonl or csv.
AUDIT_PDF_MAX_EVENTS = int(os.environ.get("AUDIT_PDF_MAX_EVENTS", "20000"))
# Seconds between signed checkpoints of the chain head; unset, one at the top of each hour.
AUDIT_CHECKPOINT_INTERVAL = os.environ.get("AUDIT_CHECKPOINT_INTERVAL", "").strip()
CELERY_BEAT_SCHEDULE = {
    "sweep-check-runs": {"task": "governance.tasks.check_runs_sweep", "schedule": 60.0},
    "record-sign-in-bursts": {
        "task": "governance.tasks.sign_in_bursts_record",
        "schedule": 60.0,
    },
    "audit-checkpoint-hourly": {
        "task": "audits.tasks.audit_checkpoint",
        "schedule": float(AUDIT_CHECKPOINT_INTERVAL)
        if AUDIT_CHECKPOINT_INTERVAL
        else crontab(minute=0),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
