"""Passline settings: one module, configured from the environment (12-factor).

PASSLINE_ENV selects the posture: ``development`` (the default, used by ``make run``),
``test`` (pytest) or ``production`` (secure cookies, HSTS, a real SECRET_KEY required).
Every default points at the loopback MariaDB, RabbitMQ and Redis.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Django's generic classes subscriptable at run time (``admin.ModelAdmin[Order]``), as the
# type hints that mypy checks write them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def _load_dotenv(path: Path) -> None:
    """Fill os.environ from a KEY=VALUE file without overriding what is already set.

    ``make`` writes ``.env`` with the generated database password and secret key;
    the real environment always wins over it.
    """
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


# Production takes its configuration from the real environment only.
if os.environ.get("PASSLINE_ENV") != "production":
    _load_dotenv(BASE_DIR / ".env")


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return value


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_percent(name: str, default: str) -> Decimal:
    """A percentage from 0 to below 100, to two places (a VAT rate)."""
    try:
        value = Decimal(env(name, default)).quantize(Decimal("0.01"))
        if value.is_finite() and 0 <= value < 100:
            return value
    except ArithmeticError:
        pass
    raise ImproperlyConfigured(f"{name} must be a percentage from 0 to below 100, such as 7.00.")


PASSLINE_ENV = env("PASSLINE_ENV", "development")
if PASSLINE_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured("PASSLINE_ENV must be development, test or production.")
PRODUCTION = PASSLINE_ENV == "production"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY", None if PRODUCTION else "dev-only-insecure-key-never-used-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "ninja",  # serves the API docs' assets locally (no CDN)
    "bus",
    "ordering",
    "billing",
    "audit",
    "notifications",
    "analytics",
    "live",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "passline.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "passline.middleware.CorrelationIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "passline.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "passline.urls"
ASGI_APPLICATION = "passline.asgi.application"
WSGI_APPLICATION = None

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
                "ordering.context_processors.cart",
            ],
        },
    },
]

# MariaDB: READ COMMITTED so that locking reads see the latest committed rows and gap
# locks do not serialise unrelated inserts; strict mode so bad data is an error, never
# a silent truncation.
#
# Two database users (docs/security.md): the application's own (DB_USER) may only read and
# write rows of its database; the owner (DB_OWNER_USER) may change the schema and create the test
# databases. Migrations, the test suite and the benchmark connect as the owner
# (PASSLINE_DB_OWNER=1; the suite always); everything else as the application's user. Without an
# owner configured, DB_USER is both.
DB_AS_OWNER = (PASSLINE_ENV == "test" or env_bool("PASSLINE_DB_OWNER", False)) and bool(env("DB_OWNER_USER", ""))
DATABASES: dict[str, Any] = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": env("DB_NAME", "passline"),
        "USER": env("DB_OWNER_USER") if DB_AS_OWNER else env("DB_USER", "passline"),
        "PASSWORD": env("DB_OWNER_PASSWORD", "") if DB_AS_OWNER else env("DB_PASSWORD", ""),
        "HOST": env("DB_HOST", "127.0.0.1"),
        "PORT": env("DB_PORT", "3306"),
        # Kept for reuse: the workers have one thread of handlers, and the web process runs
        # requests' sync code on WEB_DB_THREADS long-lived threads (passline/threads.py), so
        # every process holds a bounded number of connections.
        "CONN_MAX_AGE": int(env("DB_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
        },
        "TEST": {
            "NAME": env("DB_TEST_NAME", "test_" + env("DB_NAME", "passline")),
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
        },
    }
}
# --- HA: MariaDB primary and replica ---
# The database servers as "host:port,host:port", the primary and its replica in any order
# (docs/reliability.md). A new connection goes to the one that takes writes (read_only off),
# so after `manage.py db_promote` every process finds the new primary by itself. One server
# (the default, DB_HOST:DB_PORT) is a plain MariaDB.
DB_HOSTS = env_list("DB_HOSTS", f"{DATABASES['default']['HOST']}:{DATABASES['default']['PORT']}")
DATABASES["default"]["ENGINE"] = "passline.mariadb"
DATABASES["default"]["HOSTS"] = DB_HOSTS
# Seconds a new connection waits for a server to answer: a dead primary on another machine
# costs each process this once before the next host is tried.
DATABASES["default"]["OPTIONS"]["connect_timeout"] = int(env("DB_CONNECT_TIMEOUT", "3"))
# The account db_promote and db_rejoin act with (replication and read_only need the REPLICA
# MONITOR, REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, CONNECTION ADMIN privileges, or SUPER), and
# the one a replica replicates with.
DB_ADMIN_USER = env("DB_ADMIN_USER", "root")
DB_ADMIN_PASSWORD = env("DB_ADMIN_PASSWORD", "")
DB_REPLICATION_USER = env("DB_REPLICATION_USER", "replicator")
DB_REPLICATION_PASSWORD = env("DB_REPLICATION_PASSWORD", "")
# --- end HA: MariaDB ---
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads a web process runs requests' sync code on, each with its own kept DB connection.
WEB_DB_THREADS = int(env("WEB_DB_THREADS", "4"))

# Modules whose import registers handlers (bus/handlers.py) for `manage.py consume`.
PASSLINE_CONSUMER_MODULES = [
    "bus.deadletters",
    "consumers.balance",
    "consumers.billing",
    "consumers.audit",
    "consumers.bridge",
    "consumers.notifier",
    "consumers.analytics",
    *env_list("PASSLINE_EXTRA_CONSUMER_MODULES", ""),
]
if PASSLINE_ENV == "test":
    # Consumers and a table of observable effects that the bus tests drive.
    INSTALLED_APPS.append("tests.busapp")
    PASSLINE_CONSUMER_MODULES.append("tests.busapp.consumers")

RABBITMQ_URL = env("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# --- HA: RabbitMQ cluster failover (broker nodes) ---
# The nodes of a RabbitMQ cluster, comma-separated amqp URLs (one vhost): every client connects to
# one of them, starting at a different node per connection, and moves to a surviving one when
# its node dies (bus/connection.py). Empty: RABBITMQ_URL is the only node. Given without
# RABBITMQ_URL, the first node's URL is RABBITMQ_URL too (the vhost and user come from it).
RABBITMQ_URLS = env_list("RABBITMQ_URLS", "")
if RABBITMQ_URLS and not os.environ.get("RABBITMQ_URL"):
    RABBITMQ_URL = RABBITMQ_URLS[0]
if len({unquote(urlsplit(url).path[1:]) or "/" for url in [RABBITMQ_URL, *RABBITMQ_URLS]}) > 1:
    raise ImproperlyConfigured("RABBITMQ_URL and every node of RABBITMQ_URLS must name the same vhost.")
# --- end HA: RabbitMQ ---
# Seconds between AMQP heartbeats: a dead peer is noticed within two of them.
RABBITMQ_HEARTBEAT = int(env("RABBITMQ_HEARTBEAT", "30"))
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every key this checkout's processes write to Redis starts with it (scripts/setup.sh gives each
# checkout its own); the test suite's keys with ``<prefix>-test``, so a test run next to a
# running stack never reads or clears the stack's keys.
REDIS_PREFIX = env("REDIS_PREFIX", "passline") + ("-test" if PASSLINE_ENV == "test" else "")

# channels-redis through live/layer.py (per-process capacity, counted drops; see there).
CHANNEL_LAYERS: dict[str, Any] = {
    "default": {
        "BACKEND": "live.layer.PasslineChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # redis-py 8 gives every read a 5 s socket timeout by default, the very length of
                    # channels-redis's blocking pop (BZPOPMIN, 5 s): an idle process's receive then
                    # fails with TimeoutError (channels_redis#422). The read must outlast the pop.
                    "socket_timeout": 15,
                    "socket_connect_timeout": 5,
                    "socket_keepalive": True,
                    # A connection idle this long is PINGed before reuse: one that Redis or a NAT
                    # closed is replaced, not failed on.
                    "health_check_interval": 30,
                    # Per process and event loop. A burst beyond it waits up to pool_timeout seconds
                    # for a free connection (live/layer.py uses a blocking pool) instead of failing.
                    "max_connections": int(env("CHANNELS_MAX_CONNECTIONS", "200")),
                    "pool_timeout": 20,
                }
            ],
            "prefix": env("CHANNELS_PREFIX", REDIS_PREFIX),
            # Messages a process's inbox may hold (all its sockets share it; the default 100
            # drops a burst to a thousand sockets) and a socket's own buffer: size it for the
            # sockets one daphne serves. Drops are logged and counted (live.dropped).
            "capacity": int(env("CHANNELS_CAPACITY", "5000")),
            # A socket's group membership lapses this long after it joined, however alive the
            # socket is; live sockets re-join on a client ping after half of it.
            "group_expiry": int(env("CHANNELS_GROUP_EXPIRY", "86400")),
        },
    }
}

# --- HA: graceful shutdown ---
# SIGTERM (or SIGINT): a worker finishes the batch in hand and gives back what it prefetched, the
# relay waits for the confirms of what it published, the scheduler lets its job finish; after
# this many seconds (or at a second signal) the process exits at once (bus/shutdown.py): the
# inbox and the outbox make that safe. Below the supervisor's 20 s and compose's 30 s.
STOP_GRACE_SECONDS = float(env("STOP_GRACE_SECONDS", "15"))
# daphne on SIGTERM closes every open socket with 1001 ("going away", the pages reconnect) and
# waits this long for their close handshakes before it stops (live/shutdown.py).
LIVE_GOING_AWAY_SECONDS = float(env("LIVE_GOING_AWAY_SECONDS", "5"))
# --- end HA: graceful shutdown ---

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if PASSLINE_ENV == "test":
    # Hashing with the default PBKDF2 iterations dominates a test suite's run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "restaurant_list"
LOGOUT_REDIRECT_URL = "restaurant_list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# One currency per deployment.
CURRENCY = env("CURRENCY", "EUR")
CURRENCY_SYMBOL = env("CURRENCY_SYMBOL", "€")
# The most one movement of money may be (a typo of three zeros is refused, not executed); an
# order whose total is over it could never be paid, so ordering refuses it too.
MONEY_MAX_MOVEMENT = Decimal("10000.00")
# Prices include VAT. The rate (a percentage) a new dish starts with; each dish can have its own
# (drinks are often taxed differently from food), and an order keeps the rates of its day.
DEFAULT_VAT_RATE = env_percent("DEFAULT_VAT_RATE", "7.00")
# A paid order the kitchen has not accepted within this many seconds is rejected and refunded.
ORDER_ACCEPT_TIMEOUT_SECONDS = int(env("ORDER_ACCEPT_TIMEOUT_SECONDS", "600"))
# How long after a kitchen move the kitchen screen can still recall it (undo a mistaken tap).
KITCHEN_RECALL_SECONDS = int(env("KITCHEN_RECALL_SECONDS", "300"))
# Upper bounds that keep a single order sane; larger input is refused as bad input.
ORDER_MAX_QUANTITY_PER_LINE = int(env("ORDER_MAX_QUANTITY_PER_LINE", "50"))
ORDER_MAX_LINES = int(env("ORDER_MAX_LINES", "30"))
# The largest tip one order takes, and how many days ahead an order may be placed for a time.
ORDER_TIP_MAX = Decimal(env("ORDER_TIP_MAX", "100.00"))
ORDER_AHEAD_DAYS = int(env("ORDER_AHEAD_DAYS", "7"))
# What a customer may add to their wallet by top-ups in one day (the wallet's ledger of today,
# from local midnight), and above which amount the wallet page asks to confirm a top-up first.
TOP_UP_DAILY_LIMIT = Decimal(env("TOP_UP_DAILY_LIMIT", "2000.00"))
TOP_UP_CONFIRM_ABOVE = Decimal(env("TOP_UP_CONFIRM_ABOVE", "500.00"))
# How long the kitchen screen shows "Accepting… Undo" after Accept before it sends the accept (an
# undo within it sends nothing, so the customer is never told); 0 sends it at once.
KITCHEN_ACCEPT_UNDO_SECONDS = int(env("KITCHEN_ACCEPT_UNDO_SECONDS", "5"))

# Seconds between two pushes of one dashboard's figures (a burst costs at most two recomputes
# a second per open dashboard; the last change is always pushed).
ANALYTICS_PUSH_INTERVAL = float(env("ANALYTICS_PUSH_INTERVAL", "0.5"))

# --- customer notifications (consumers/notifier.py) ---
# Links in emails and texts are absolute: the site's public address.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000")
# Email: SMTP when EMAIL_HOST is set, else printed by the notifier (development).
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT", "10"))
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Passline <orders@passline.example>")
EMAIL_MESSAGE_ID_DOMAIN = env("EMAIL_MESSAGE_ID_DOMAIN", "passline.example")
# SMS: a class with the interface of notifications.delivery.SmsProvider.
SMS_PROVIDER = env("SMS_PROVIDER", "notifications.delivery.LoggingSmsProvider")
SMS_FROM = env("SMS_FROM", "Passline")
# Seconds before each further delivery attempt; then the command is dead-lettered. Each delay
# is a queue's TTL: changing them means deleting the notifier's retry queues first.
NOTIFIER_RETRY_DELAYS = tuple(
    float(d) for d in env_list("NOTIFIER_RETRY_DELAYS", "0.2,0.4,0.8" if PASSLINE_ENV == "test" else "5,30,300")
)

# Uploaded photos (ordering/photos.py): files whose names change with their content, served by
# the app with a year's caching (ordering.views.media) or by whatever serves MEDIA_ROOT in front.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
PHOTO_MAX_BYTES = int(env("PHOTO_MAX_BYTES", str(5 * 1024 * 1024)))

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if PASSLINE_ENV == "test"
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Without collectstatic (tests, a quick shell) whitenoise serves from the finders.
WHITENOISE_USE_FINDERS = PASSLINE_ENV != "production"

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CACHES: dict[str, Any] = {
    "default": {
        "BACKEND": "passline.cache.SharedRedisCache",
        "LOCATION": env("CACHE_URL", "redis://127.0.0.1:6379/1"),
        "KEY_PREFIX": env("CACHE_PREFIX", REDIS_PREFIX),
    }
}

# --- HA: Redis Sentinel ---
# Redis behind Sentinel (bus/redis_clients.py). With sentinels set ("host:port,host:port"),
# every client (channel layer, cache and sessions, hints, breakers, the scheduler's lock) asks
# them where the master named REDIS_SENTINEL_MASTER is and follows it through a failover;
# REDIS_URL and CACHE_URL then give only the database number and the master's password. Empty:
# the one server of the URLs.
REDIS_SENTINELS: list[tuple[str, int]] = []
for _entry in env_list("REDIS_SENTINELS", ""):
    _host, _, _port = _entry.rpartition(":")
    if not _host or not _port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS entry {_entry!r} is not host:port")
    REDIS_SENTINELS.append((_host.strip("[]"), int(_port)))
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", "passline")
# The sentinels' own password (requirepass in their config); the master's is in the URLs.
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD", "")
if REDIS_SENTINELS:
    # channels-redis's Sentinel form of a hosts entry; the address still gives db and password.
    for _layer_host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:
        _layer_host.update(sentinels=REDIS_SENTINELS, master_name=REDIS_SENTINEL_MASTER)
    CACHES["default"]["OPTIONS"] = {"pool_class": "bus.redis_clients.SentinelPool"}
# --- end HA: Redis ---

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    # TLS is terminated in front of daphne; trust its X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# ======================================================================================
# Security (docs/security.md). One block per concern, each owned by the code it configures.
# ======================================================================================

# --- payments: intents, the provider's webhook, production refusal of the simulated provider ---
# The payment provider (a class with billing.provider.PaymentProvider's interface). The simulated
# one approves any Luhn-valid card but the test card 4000 0000 0000 0002: free money, so
# production refuses it unless this is a demo, said explicitly with PASSLINE_DEMO=1.
PAYMENT_PROVIDER = env("PAYMENT_PROVIDER", "billing.provider.SimulatedProvider")
PASSLINE_DEMO = env_bool("PASSLINE_DEMO", False)
if PRODUCTION and PAYMENT_PROVIDER == "billing.provider.SimulatedProvider" and not PASSLINE_DEMO:
    raise ImproperlyConfigured(
        "PAYMENT_PROVIDER is the simulated payment provider, which approves any card number: configure a real "
        "provider, or set PASSLINE_DEMO=1 to run a demo on purpose."
    )
# The secret the provider signs its webhook deliveries with (HMAC-SHA256); required in production.
PAYMENT_WEBHOOK_SECRET = env(
    "PAYMENT_WEBHOOK_SECRET", None if PRODUCTION else "whsec_dev-only-never-used-in-production"
)
if PRODUCTION and len(PAYMENT_WEBHOOK_SECRET) < 32:
    raise ImproperlyConfigured("PAYMENT_WEBHOOK_SECRET must be at least 32 characters.")
# A delivery signed longer ago than this (or as far ahead) is refused: a captured one cannot be replayed.
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = int(env("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", "300"))

# --- rate limits, password-guessing lockout, API tokens ---
# API throttles and the site's form limits (passline/throttles.py): a sliding window per scope
# in the Redis cache, shared by every web process. Rates are "<count>/<period>" (s, min, hour,
# day; "5/10min" is five per ten minutes). Tests run with rates no suite ever reaches; a test of a
# limit lowers its own (override_settings, or a throttle built with rate=).
_NO_LIMIT = "100000/min"


def _rate(name: str, default: str) -> str:
    rate = env(f"RATE_LIMIT_{name.upper()}", _NO_LIMIT if PASSLINE_ENV == "test" else default).strip()
    if not re.fullmatch(r"[1-9]\d*/\d*(s|sec|m|min|h|hour|d|day)", rate):
        raise ImproperlyConfigured(f"RATE_LIMIT_{name.upper()}={rate!r}: use <count>/<period>, e.g. 10/min or 5/10min.")
    return rate


PASSLINE_RATE_LIMITS = {
    # every API call, per signed-in account and per client address
    "api_user": _rate("api_user", "300/min"),
    "api_ip": _rate("api_ip", "600/min"),
    # POST /auth/token and the site's log-in form, per address (axes locks single usernames)
    "login": _rate("login", "30/10min"),
    # accounts created per address, API and site together
    "register": _rate("register", "5/hour"),
    # orders placed, per account and per address
    "orders": _rate("orders", "20/hour"),
    "orders_ip": _rate("orders_ip", "60/hour"),
    # top-ups and other money coming in, per account and per address (passline.throttles.MONEY)
    "money": _rate("money", "10/hour"),
    "money_ip": _rate("money_ip", "30/hour"),
    # password-reset emails asked for, per address and per email address
    "password_reset": _rate("password_reset", "5/hour"),
    "password_reset_email": _rate("password_reset_email", "3/hour"),
}

# Password guessing: django-axes on every authenticate() with a request (the site's and the
# admin's log-in, POST /api/v1/auth/token). Attempts are rows in MariaDB (axes' database
# handler): every web process sees them, a cache eviction or a Redis restart cannot clear a
# lock, and staff see and lift locks in the admin. Locked per username *and* address, so an
# attacker locks an account only for themselves, never for its owner elsewhere.
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes requires
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(env("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The address daphne reports (behind the proxy, from its X-Forwarded-For): one definition for
# throttles and lockout. (Usernames need no folding: attempts are looked up under the same
# case- and accent-insensitive collation as the accounts, so "Demo " counts as "demo".)
AXES_CLIENT_IP_CALLABLE = "passline.throttles.client_ip"
AXES_LOCKOUT_CALLABLE = "passline.throttles.lockout_response"
# Successful log-ins are not written down (the table would only grow).
AXES_DISABLE_ACCESS_LOG = True
# Masked in the attempts kept (a password is always masked).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
AXES_VERBOSE = False

# API tokens (ordering/services/accounts.py): a bearer token lives API_TOKEN_LIFETIME, its
# refresh token (single use, exchanged for a new pair) API_REFRESH_TOKEN_LIFETIME.
API_TOKEN_LIFETIME = timedelta(seconds=int(env("API_TOKEN_LIFETIME_SECONDS", str(24 * 3600))))
API_REFRESH_TOKEN_LIFETIME = timedelta(seconds=int(env("API_REFRESH_TOKEN_LIFETIME_SECONDS", str(30 * 24 * 3600))))
# A password-reset link works this long (Django's default is three days).
PASSWORD_RESET_TIMEOUT = int(env("PASSWORD_RESET_TIMEOUT_SECONDS", "3600"))

# --- WebSockets: frame size, message rate, connection caps, revocation ---
# (sockets) live/limits.py, live/revocation.py; docs/security.md "WebSockets".
# A client frame larger than this closes its socket with 1009 (the pages send frames of a few
# dozen bytes). Run daphne with --websocket-max-message-size/--websocket-max-frame-size too, so
# that a frame far beyond it is refused before it is buffered whole.
LIVE_MAX_FRAME_BYTES = int(env("LIVE_MAX_FRAME_BYTES", "4096"))
# Client frames one socket may send: LIVE_MESSAGE_RATE a second on average, LIVE_MESSAGE_BURST at
# once (pages send two or three every 20 s; a kitchen asks for a sync per unknown order); more
# closes the socket with 4429.
LIVE_MESSAGE_RATE = float(env("LIVE_MESSAGE_RATE", "5"))
LIVE_MESSAGE_BURST = int(env("LIVE_MESSAGE_BURST", "30"))
# Sockets one client address (an IPv6 /64) may hold open across every web process, counted in
# Redis; the next is refused with 4429. 0: no cap.
LIVE_MAX_SOCKETS_PER_ADDRESS = int(env("LIVE_MAX_SOCKETS_PER_ADDRESS", "100"))
# Every this many seconds an open socket re-checks its session or token and its user's rights
# (closed with 4401 / 4403), and renews its connection slot (a slot lapses after three missed
# renewals, so a crashed process frees its addresses' slots).
LIVE_AUTH_CHECK_SECONDS = float(env("LIVE_AUTH_CHECK_SECONDS", "60"))
# A client frame re-checks them too, at most this often per socket.
LIVE_AUTH_RECHECK_SECONDS = float(env("LIVE_AUTH_RECHECK_SECONDS", "5"))

# --- the bus: one RabbitMQ user per process role ---
# Each process connects as its role's own user (bus/roles.py): ``<RABBITMQ_USER_PREFIX><role>``
# with the password in ``RABBITMQ_PASSWORD_<ROLE>`` (``RABBITMQ_PASSWORD_NOTIFIER_EMAIL`` for
# notifier-email); a process needs only its own role's. RABBITMQ_URL then names only the broker
# and the vhost. scripts/setup.sh writes the passwords into .env once and creates the users
# (``manage.py bus_users``). Roles are on in production always; elsewhere once any role has a
# password, unless BUS_ROLES=0 (the benchmark's own vhost has only guest). Off, every process
# uses RABBITMQ_URL's user and no publisher is checked. The test suite starts with them off (its
# session vhost has guest) and turns them on for the tests of roles (tests/security/test_bus.py).
RABBITMQ_ROLE_PASSWORDS: dict[str, str] = {
    key.removeprefix("RABBITMQ_PASSWORD_").lower().replace("_", "-"): value
    for key, value in os.environ.items()
    if key.startswith("RABBITMQ_PASSWORD_") and value and PASSLINE_ENV != "test"
}
BUS_ROLES = env_bool("BUS_ROLES", PRODUCTION or bool(RABBITMQ_ROLE_PASSWORDS))
if PRODUCTION and not BUS_ROLES and not PASSLINE_DEMO:
    # The benchmark's production stack (a declared demo, on a vhost of its own) runs without them.
    raise ImproperlyConfigured(
        "BUS_ROLES=0 in production: every process could publish anything. Only with PASSLINE_DEMO=1."
    )
_vhost = unquote(urlsplit(RABBITMQ_URL).path[1:])
# The users of one checkout are named after its vhost, so checkouts sharing a broker never share one.
RABBITMQ_USER_PREFIX = env("RABBITMQ_USER_PREFIX", "passline-" if _vhost in {"", "/"} else f"{_vhost}-")
# The role of a process that makes RPC calls without being a worker (a shell, a script);
# workers and the relay know their own.
PASSLINE_BUS_ROLE = env("PASSLINE_BUS_ROLE", "")

# --- notifications: verified addresses, hourly caps ---
# Emails and texts go only to verified addresses (notifications/addresses.py). A verification
# link works this long; a texted code this long, and for this many wrong guesses.
VERIFY_EMAIL_LINK_SECONDS = int(env("VERIFY_EMAIL_LINK_SECONDS", str(48 * 3600)))
VERIFY_PHONE_CODE_SECONDS = int(env("VERIFY_PHONE_CODE_SECONDS", "600"))
VERIFY_PHONE_CODE_ATTEMPTS = int(env("VERIFY_PHONE_CODE_ATTEMPTS", "5"))
# Hourly caps (a sliding window, counted in Redis and shared by every process): emails and texts
# per customer and for the whole site, and verification links or codes per customer and per
# address. Over a cap a message is not sent and the delivery log says why. The test suite's
# defaults are high (its customers share ids and Redis across tests); its cap tests set their own.
_CAPS_IN_TESTS = PASSLINE_ENV == "test"
NOTIFY_CAP_WINDOW_SECONDS = int(env("NOTIFY_CAP_WINDOW_SECONDS", "3600"))
NOTIFY_EMAILS_PER_CUSTOMER = int(env("NOTIFY_EMAILS_PER_CUSTOMER", "100000" if _CAPS_IN_TESTS else "30"))
NOTIFY_TEXTS_PER_CUSTOMER = int(env("NOTIFY_TEXTS_PER_CUSTOMER", "100000" if _CAPS_IN_TESTS else "15"))
NOTIFY_EMAILS_PER_SITE = int(env("NOTIFY_EMAILS_PER_SITE", "1000000" if _CAPS_IN_TESTS else "5000"))
NOTIFY_TEXTS_PER_SITE = int(env("NOTIFY_TEXTS_PER_SITE", "1000000" if _CAPS_IN_TESTS else "500"))
VERIFY_SENDS_PER_CUSTOMER = int(env("VERIFY_SENDS_PER_CUSTOMER", "100000" if _CAPS_IN_TESTS else "5"))
VERIFY_SENDS_PER_ADDRESS = int(env("VERIFY_SENDS_PER_ADDRESS", "100000" if _CAPS_IN_TESTS else "3"))
# Texts: SMS_PROVIDER (above) names the provider; "" turns texts off (recorded as not sent).
# notifications.delivery.TwilioSmsProvider reads these.
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", "")
TWILIO_API_URL = env("TWILIO_API_URL", "https://api.twilio.com")
SMS_TIMEOUT = float(env("SMS_TIMEOUT", "10"))
# Production refuses to start with the logging provider (texts, codes included, would only be
# logged) unless PASSLINE_DEMO=1 says this is a demonstration.
if PRODUCTION and SMS_PROVIDER == "notifications.delivery.LoggingSmsProvider" and not env_bool("PASSLINE_DEMO", False):
    raise ImproperlyConfigured(
        "SMS_PROVIDER is the logging provider, which sends nothing: set SMS_PROVIDER to a real provider "
        "(notifications.delivery.TwilioSmsProvider), to an empty value to turn texts off, or PASSLINE_DEMO=1 "
        "for a demonstration."
    )
if (
    PRODUCTION
    and SMS_PROVIDER == "notifications.delivery.TwilioSmsProvider"
    and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)
):
    raise ImproperlyConfigured("SMS_PROVIDER is Twilio: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.")
# Nor with emails printed to the log (verification and password-reset links among them).
if (
    PRODUCTION
    and EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
    and not env_bool("PASSLINE_DEMO", False)
):
    raise ImproperlyConfigured(
        "Emails would only be printed to the log (no EMAIL_HOST): set EMAIL_HOST for SMTP, or PASSLINE_DEMO=1 "
        "for a demonstration."
    )

# --- headers and secrets: CSP, HSTS, cookies ---
# Content-Security-Policy (django-csp): scripts, styles, fonts and images from this site only (no
# inline script or style attribute anywhere in the templates), sockets and fetches to this site,
# no framing, forms posting only here and to the payment provider's confirmation page.
from csp.constants import NONE, SELF  # noqa: E402

CSP_EXTRA_FORM_ACTION = env_list("CSP_EXTRA_FORM_ACTION", "")
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *CSP_EXTRA_FORM_ACTION],
    }
}
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "passline.middleware.ContentSecurityPolicyMiddleware",
)
# Pages hand the CSRF token to their scripts in a <meta> tag: no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOG_FORMAT = env("LOG_FORMAT", "json")  # "json" for machines, "text" for a terminal
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "passline.logging.CorrelationIdFilter"}},
    "formatters": {
        "json": {"()": "passline.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(role)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["correlation"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        # pika narrates every socket event, and logs each refused reconnect as an ERROR; the
        # relay and the runner log what matters (lost connection, reconnecting) themselves.
        "pika": {"level": "CRITICAL"},
    },
}

# --- operations: housekeeping (operations/housekeeping.py, the scheduler process) ---
# What to keep, in days: sent outbox rows and processed-message records (at least 1: a redelivered
# message must still be recognised), the audit trail, the notifications' delivery log.
BUS_RETENTION_DAYS = float(env("BUS_RETENTION_DAYS", "7"))
AUDIT_RETENTION_DAYS = float(env("AUDIT_RETENTION_DAYS", "400"))
NOTIFICATION_RETENTION_DAYS = float(env("NOTIFICATION_RETENTION_DAYS", "90"))
# Seconds after the scheduler starts before its first round (a restart loop must not prune in a loop).
HOUSEKEEPING_FIRST_DELAY = float(env("HOUSEKEEPING_FIRST_DELAY", "60"))

# --- operations: metrics (Prometheus) ---
# Every process writes its metrics to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's
# multiprocess mode; operations/multiprocess.py says why), and the web process's /metrics adds
# them up. One directory per checkout (scripts/supervise.py empties it when the stack starts;
# compose shares a volume); the test suite uses a temporary one of its own.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if not _metrics_dir and PASSLINE_ENV == "test":
    import atexit
    import shutil
    import tempfile

    _metrics_dir = tempfile.mkdtemp(prefix="passline-metrics-")
    atexit.register(shutil.rmtree, _metrics_dir, True)
from operations.multiprocess import configure as _configure_metrics  # noqa: E402

METRICS_DIR = _configure_metrics(_metrics_dir or BASE_DIR / "var" / "prometheus")
# Who may read /metrics (anyone else gets a 404): loopback and the private networks (compose's,
# a cluster's). The proxy in front hides it too (docker/nginx/nginx.conf).
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
)
# What /metrics asks the database at scrape time (outbox backlog, wallet totals): each query is
# cut off after this many seconds, and the wallet totals are reused for METRICS_LEDGER_CACHE_SECONDS.
METRICS_QUERY_TIMEOUT = float(env("METRICS_QUERY_TIMEOUT", "2"))
METRICS_LEDGER_CACHE_SECONDS = float(env("METRICS_LEDGER_CACHE_SECONDS", "60"))
# Collectors /metrics runs at scrape time, in the web process (dotted paths of classes with
# prometheus_client's ``collect()``); other blocks append theirs.
PASSLINE_METRICS_COLLECTORS = [
    "operations.metrics.OutboxCollector",
    "operations.metrics.WalletLedgerCollector",
    # the worker registry (Redis): live copies of each role, their beats' age
    "operations.registry_metrics.WorkersCollector",
]
# django-prometheus: HTTP requests by route (the URL's name or pattern) and status, its metrics
# named passline_django_http_*. Its middleware is sync-style, which costs no thread hop here: the
# web process runs the whole chain in one hop (passline/threads.py).
PROMETHEUS_METRIC_NAMESPACE = "passline"
PROMETHEUS_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
MIDDLEWARE.insert(0, "operations.metrics.HttpBeforeMiddleware")
# Innermost but axes (which must stay last).
MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "operations.metrics.HttpAfterMiddleware")
# The Prometheus that `make run` starts beside the stack (scripts/supervise.py, ops/prometheus/).
PROMETHEUS_PORT = int(env("PROMETHEUS_PORT", "9090"))

# --- operations: worker registry, readiness, the operations page ---
# Every worker, the relay and the scheduler write their registry entry into Redis this often; an
# entry lives three beats, so a dead process drops out of it within that (bus/registry.py).
WORKER_BEAT_SECONDS = float(env("WORKER_BEAT_SECONDS", "5"))
# /readyz: unready while the oldest unsent outbox row is older than this (the relay is down or far
# behind); each check gives up after READYZ_TIMEOUT_SECONDS; the answer is reused for
# READYZ_CACHE_SECONDS, so a load balancer polling it costs nothing (operations/readiness.py).
READYZ_OUTBOX_MAX_AGE_SECONDS = float(env("READYZ_OUTBOX_MAX_AGE_SECONDS", "60"))
READYZ_TIMEOUT_SECONDS = float(env("READYZ_TIMEOUT_SECONDS", "2"))
READYZ_CACHE_SECONDS = float(env("READYZ_CACHE_SECONDS", "1"))
# The probes answer plain http from the load balancer and the container's own health check.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- operations: circuit breakers and timeouts on outbound calls ---
# passline/breakers.py: one breaker per outside provider (payment, sms, email), its state shared by
# every process in Redis. It opens after BREAKER_FAIL_MAX consecutive failures (timeouts, connection
# errors, 5xx; not a declined card or a refused number), stays open BREAKER_RESET_TIMEOUT seconds
# (calls fail fast), then lets one trial call through: a success closes it, a failure opens it again.
BREAKER_FAIL_MAX = int(env("BREAKER_FAIL_MAX", "5"))
BREAKER_RESET_TIMEOUT = float(env("BREAKER_RESET_TIMEOUT", "30"))
# Seconds a call to the payment provider may take (the adapter passes it to its HTTP client);
# SMS_TIMEOUT and EMAIL_TIMEOUT (above) bound the other two.
PAYMENT_PROVIDER_TIMEOUT = float(env("PAYMENT_PROVIDER_TIMEOUT", "10"))
# The billing worker's retries of a top-up's payment intent while the provider fails (seconds
# before the 2nd, 3rd, ... attempt): they outlast an open breaker; after the last, the top-up is
# declined ("could not reach the payment provider") and nothing was charged.
TOP_UP_RETRY_DELAYS = tuple(
    float(d) for d in env_list("TOP_UP_RETRY_DELAYS", "0.3,1,2,3" if PASSLINE_ENV == "test" else "5,15,30,60,120,300")
)

# --- operations: one order followed end to end ---
# None: the ids travel in each message's envelope (bus/correlation.py), and docs/operations.md
# ("Following one order") says how to read them.
