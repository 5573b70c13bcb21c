"""webchat settings: every value comes from the environment (or a `.env` file).

`.env.example` documents each variable. The defaults give the embedded set-up that
`make run` uses: SQLite, an in-memory channel layer, no services to install.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

from webchat.hosts import wildcard_hosts

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# The placeholder that marks "no real secret configured". Fine for a laptop demo with
# DEBUG on; refused in production (below).
INSECURE_SECRET_KEY = "insecure-development-key-change-me"

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)


# What keeps this configuration from serving. The web server and the Celery processes
# refuse to start while it is not empty (webchat/startup.py); management commands such as
# makemigrations still run, since they serve nobody.
STARTUP_PROBLEMS: list[str] = []
_refuse = STARTUP_PROBLEMS.append


if not DEBUG and (SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 32):
    _refuse(
        "DEBUG is off and SECRET_KEY is missing or too short; set SECRET_KEY to a random "
        "string of at least 32 characters in the environment or .env"
    )

# Master keys that seal provider API keys at rest (base64, 32 bytes each, comma-separated):
# the first seals, all open. Rotate by putting a new key first and running rotate_keys.
KEY_ENCRYPTION_KEYS = [k for k in env.list("KEY_ENCRYPTION_KEYS", default=[]) if k]
for _key in KEY_ENCRYPTION_KEYS:
    try:
        _ok = len(base64.urlsafe_b64decode(_key + "=" * (-len(_key) % 4))) == 32
    except ValueError:
        _ok = False
    if not _ok:
        _refuse("KEY_ENCRYPTION_KEYS holds a value that is not a base64 32-byte key")
if not DEBUG and not KEY_ENCRYPTION_KEYS:
    _refuse(
        "DEBUG is off and KEY_ENCRYPTION_KEYS is empty; set it to one or more base64 32-byte keys "
        '(python -c "import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())")'
    )

ALLOWED_HOSTS = [h for h in env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"]) if h]
# A "*" would switch off the Host check and let any site's page open a websocket with a
# student's cookies (webchat/hosts.py). ".school.example" (a domain and its subdomains) is fine.
if not DEBUG and wildcard_hosts(ALLOWED_HOSTS):
    _refuse(
        f"DEBUG is off and ALLOWED_HOSTS contains {', '.join(wildcard_hosts(ALLOWED_HOSTS))}; list the site's "
        "host names instead (chat.school.example, or .school.example for a domain and its subdomains)"
    )
CSRF_TRUSTED_ORIGINS = [o for o in env.list("CSRF_TRUSTED_ORIGINS", default=[]) if o]

INSTALLED_APPS = [
    "webchat.admin_site.AdminConfig",  # Django's admin (webchat/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "apps.accounts.apps.LoginAttemptsConfig",  # django-axes, under a translated name in admin
    "csp",
    "webchat.apps.WebchatConfig",  # the project's own system checks (webchat/checks.py)
    "apps.accounts",
    "apps.providers",
    "apps.conversations",
    "apps.billing",
    "apps.gateway",
    "apps.learn",
]

MIDDLEWARE = [
    "webchat.logs.RequestIdMiddleware",
    # Django's own, with their hooks run on the event loop (webchat/django_middleware.py).
    "webchat.django_middleware.SecurityMiddleware",
    "webchat.csp.ContentSecurityPolicyMiddleware",
    "webchat.static_files.StaticFilesMiddleware",  # WhiteNoise, async too
    "webchat.django_middleware.SessionMiddleware",
    "webchat.django_middleware.LocaleMiddleware",
    "webchat.django_middleware.CommonMiddleware",
    "webchat.django_middleware.CsrfViewMiddleware",
    "webchat.django_middleware.AuthenticationMiddleware",
    "webchat.django_middleware.MessageMiddleware",
    "webchat.django_middleware.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

# Django finds its security middlewares by path; ours are subclasses, checked by
# webchat/checks.py (django_middleware_checks) instead.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling: after AXES_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is locked out for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True

ROOT_URLCONF = "webchat.urls"
ASGI_APPLICATION = "webchat.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the single writer; the busy timeout makes concurrent
    # writers wait for the lock instead of failing at once with "database is locked". The
    # backend queues one process's writers on a lock (webchat/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "webchat.sqlite"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test.sqlite3")}
# Connections are reused, not opened per request or per chat step (opening one costs more
# than the queries of a turn), and checked before reuse. PostgreSQL: psycopg's pool, shared
# by the threads of a process (Django closes a connection back into it after each step).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DB_POOL", default=True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django refuses both at once
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Django's hashers, PBKDF2-SHA256 first (new passwords), with at most
# PASSWORD_HASHING_CONCURRENCY hashes at once (default: one fewer than the cores) so a class
# logging in together does not stall everyone's chat (webchat/passwords.py).
PASSWORD_HASHERS = [
    "webchat.passwords.PBKDF2OneCoreAtATimeHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
PASSWORD_HASHING_CONCURRENCY = env.int("PASSWORD_HASHING_CONCURRENCY", default=0) or None
# How long a hash waits for its turn before it runs anyway (a flood of logins must not hold
# every real one back without end).
PASSWORD_HASHING_WAIT = env.float("PASSWORD_HASHING_WAIT", default=5.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: zh-hans first, English complete beside it.
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Third-party browser code comes from npm at install time (package.json, pinned in
# package-lock.json; `make` runs `npm ci`), never from the repository: only the built files
# the chat page loads are exposed, under static/vendor/<package>/.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/markdown-it", NODE_MODULES / "markdown-it" / "dist" / "browser"),
    ("vendor/dompurify", NODE_MODULES / "dompurify" / "dist"),
    ("vendor/katex", NODE_MODULES / "katex" / "dist"),  # loaded only when a reply has math (static/js/math.js)
]
STATIC_ROOT = BASE_DIR / "staticfiles"
# `collectstatic` fills STATIC_ROOT (make does it); in DEBUG edits to static/ show at once.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)

# Channels: Redis when configured (several workers), otherwise in memory (one process).
REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYER_SOCKET_TIMEOUT = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=30.0)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Each socket waits on Redis with a 5 s blocking BZPOPMIN; redis-py's default
            # read timeout is the same 5 s, so under load the client gave up first and the
            # socket dropped mid-reply. A read may outlast the longest blocking call.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The Django cache: Redis when configured (shared by every process), else per process.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Celery: Redis in production; in the embedded set-up a broker kept in files under var/,
# so the worker and beat need no server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
CELERY_DATA_DIR = Path(env.str("CELERY_DATA_DIR", default="") or BASE_DIR / "var" / "celery")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed"):
        (CELERY_DATA_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "processed_folder": str(CELERY_DATA_DIR / "processed"),
        # kombu's exchange tables; its default is "control" in the working directory.
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
    }
    # kombu's filesystem transport, writing each message whole before the worker can see it.
    CELERY_BROKER_TRANSPORT = "webchat.filebroker:Transport"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or (REDIS_URL or None)
CELERY_TASK_IGNORE_RESULT = not CELERY_RESULT_BACKEND
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

# Where the app reaches itself: the demo provider is served by this site and called over
# HTTP like any other provider, so its base URL is relative to this address.
# The public /demo/v1 endpoint (no account): requests a minute per address. webchat's own
# calls to the demo are metered like any model instead.
DEMO_PUBLIC_RPM = env.int("DEMO_PUBLIC_RPM", default=20)
INTERNAL_BASE_URL = env.str("INTERNAL_BASE_URL", default="") or "http://127.0.0.1:8000"

# Chat limits and upstream timeouts (seconds). The SDK's own default (600 s) is far too
# long for a classroom.
CHAT_MAX_CONTENT_CHARS = env.int("CHAT_MAX_CONTENT_CHARS", default=8000)
# All the messages one API request may send, in characters (a chat turn's history is ours).
CHAT_MAX_PROMPT_CHARS = env.int("CHAT_MAX_PROMPT_CHARS", default=400_000)
CHAT_DEFAULT_MAX_TOKENS = env.int("CHAT_DEFAULT_MAX_TOKENS", default=1024)
# Chat sockets one user may have open at once (tabs, windows, devices); one more is refused.
CHAT_MAX_SOCKETS_PER_USER = env.int("CHAT_MAX_SOCKETS_PER_USER", default=5)
LLM_CONNECT_TIMEOUT = env.float("LLM_CONNECT_TIMEOUT", default=5.0)
LLM_FIRST_CHUNK_TIMEOUT = env.float("LLM_FIRST_CHUNK_TIMEOUT", default=30.0)
LLM_IDLE_TIMEOUT = env.float("LLM_IDLE_TIMEOUT", default=30.0)
LLM_TOTAL_TIMEOUT = env.float("LLM_TOTAL_TIMEOUT", default=180.0)
# Retries before the first chunk reaches the user (never after).
LLM_MAX_ATTEMPTS = env.int("LLM_MAX_ATTEMPTS", default=3)
LLM_BACKOFF_BASE = env.float("LLM_BACKOFF_BASE", default=0.5)
LLM_RETRY_AFTER_CAP = env.float("LLM_RETRY_AFTER_CAP", default=10.0)
# The most text one reply may bring back from any provider (bytes of UTF-8). Past it the call
# is cut and the reply saved as interrupted (upstream_too_large); raw bodies, lines and
# decompressed streams are capped at multiples of it (apps/providers/netguard.py).
LLM_MAX_REPLY_BYTES = env.int("LLM_MAX_REPLY_BYTES", default=1_000_000)
# The largest request body any URL takes (bytes), refused with 413 before it is stored
# (webchat/body_limit.py): Django's own limit on what a view reads, 2.5 MiB. nginx's
# client_max_body_size (deploy/nginx.conf) is set just above it.
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=2_621_440)

# Billing: the currency costs are summed in (admin sets exchange rates to it), and how long
# a hold may stay open before the periodic task settles it as a died request.
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="CNY")
# How often Celery beat rebuilds the usage rollups.
ROLLUP_EVERY_SECONDS = env.int("ROLLUP_EVERY_SECONDS", default=300)
# How often it sets the usage counters and rollups against the ledger.
BALANCE_CHECK_EVERY_SECONDS = env.int("BALANCE_CHECK_EVERY_SECONDS", default=3600)
HOLD_EXPIRY_SECONDS = env.int("HOLD_EXPIRY_SECONDS", default=int(LLM_TOTAL_TIMEOUT) + 120)
# A call, every attempt and fallback route with it, ends within LLM_TOTAL_TIMEOUT
# (providers.client.stream); a hold expired sooner would settle a turn still streaming,
# for its prompt alone, and let an idempotent /v1 retry run it a second time.
if HOLD_EXPIRY_SECONDS < LLM_TOTAL_TIMEOUT + 60:
    _refuse(
        f"HOLD_EXPIRY_SECONDS ({HOLD_EXPIRY_SECONDS}) must be at least LLM_TOTAL_TIMEOUT + 60 "
        f"({int(LLM_TOTAL_TIMEOUT) + 60}): a hold would expire while its turn still runs."
    )

# The built-in demo model: pause between streamed chunks, in milliseconds.
DEMO_STREAM_DELAY_MS = env.int("DEMO_STREAM_DELAY_MS", default=35)

# tiktoken's rank files are copied here from an installed package, never downloaded.
TIKTOKEN_CACHE_DIR = env.str("TIKTOKEN_CACHE_DIR", default="") or str(BASE_DIR / ".cache" / "tiktoken")

# --- Behind HTTPS (production) ------------------------------------------------------
# SECURE_HTTPS=True when the site is served over HTTPS (the compose proxy, or a load
# balancer in front of it): secure cookies, HSTS, redirects to https, and the proxy's
# X-Forwarded-Proto trusted.
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=False)
if SECURE_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response (django-csp): scripts, styles, fonts and
# sockets from this site only, images from it or data: URLs, no inline script or style,
# never framed. So even HTML that slipped past the reply sanitiser could not run a script
# or load an image from another host (a tracking pixel in a model's reply).
# webchat.csp adds ws(s)://<this host> to connect-src for browsers before CSP level 3.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Error reports (the DEBUG page too) show marked POST fields and locals as stars: a key
# posted to a view that fails must not appear on the page or in a mailed report.
DEFAULT_EXCEPTION_REPORTER_FILTER = "webchat.reporting.SecretSafeExceptionReporterFilter"

# --- Logging: JSON lines with the request id; never a secret ----------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "webchat.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "webchat.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The HTTP and SDK loggers would print request details at DEBUG: keep them quiet.
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "axes")},
}

# Networks that user-typed provider URLs may reach although they are not public (for a
# school's own model server, e.g. 10.20.0.5/32). Empty: public addresses only.
OUTBOUND_ALLOWED_NETWORKS = [n for n in env.list("OUTBOUND_ALLOWED_NETWORKS", default=[]) if n]
# How long a "Test this key" call may take, in seconds.
CREDENTIAL_CHECK_TIMEOUT = env.float("CREDENTIAL_CHECK_TIMEOUT", default=10.0)
