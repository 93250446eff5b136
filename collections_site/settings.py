"""Settings, read from the environment (django-environ).

Development needs nothing set: SQLite in the project folder, Celery tasks run in-process.
Production (``DJANGO_ENV=production``) needs ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and
``CELERY_BROKER_URL`` and refuses to start with ``DEBUG`` on or the development key.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_ENV=production refuses DEBUG=true")
    if SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs SECRET_KEY set to a random value of 32+ characters"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "axes",
    "loans.apps.LoansConfig",
    "debt_collections.apps.DebtCollectionsConfig",
    "compliance.apps.ComplianceConfig",
    "api.apps.ApiConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body: an oversize API request is refused as problem+json (413).
    "api.problems.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The signed-in user's own time zone and language (collections_site.middleware).
    "collections_site.middleware.StaffPreferenceMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it counts failed sign-ins and refuses a locked-out one before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Sign-in lockout: after AXES_FAILURE_LIMIT failures for one user name from one address, that pair is
# locked out for AXES_COOLOFF_MINUTES (an administrator can unlock it sooner in the admin, or with
# `manage.py axes_reset_username USER`).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Behind the production proxy the client address is the first of X-Forwarded-For.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if PRODUCTION else ["REMOTE_ADDR"]

ROOT_URLCONF = "collections_site.urls"
WSGI_APPLICATION = "collections_site.wsgi.application"
ASGI_APPLICATION = "collections_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "collections_site.context.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our overrides of Django's per-language formats (collections_site/formats/<language>/formats.py).
FORMAT_MODULE_PATH = ["collections_site.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The site's own CSS and scripts, and vendor/ (htmx, Chart.js) copied there from npm by `make assets`.
STATICFILES_DIRS = [BASE_DIR / "collections_site" / "static"]
MEDIA_URL = "media/"
# Uploaded recordings and generated evidence packs. Not served by the app: staff download them
# through views that check permissions.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- the book -----------------------------------------------------------------------------------
# Default currency for new products and the demo data (ISO 4217).
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="CNY")
# The annualised cap on contractual interest plus penalty interest (a fraction: 0.24 = 24% a year).
# Penalty accrual never takes a loan's yearly cost above it (NIFA 2018: nothing above the legal cap).
PENALTY_ANNUAL_COST_CAP = Decimal(env.str("PENALTY_ANNUAL_COST_CAP", default="0.24"))

# --- personal data at rest ------------------------------------------------------------------------
# National ID numbers are stored as Fernet tokens (loans.crypto). FIELD_ENCRYPTION_KEYS: comma-separated
# Fernet keys; the first encrypts, all decrypt. Rotation: put a new key first, run
# `manage.py rotate_encryption_keys`, then drop the old key. FIELD_HASH_KEY keys the HMAC-SHA256 kept
# beside each number for exact-match lookup. Development runs on fixed keys made from the constants
# below (the Fernet key is b"development-only-fernet-key-0001" in base64); production refuses to start
# without its own. A new Fernet key:
#   python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
DEVELOPMENT_FIELD_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQtb25seS1mZXJuZXQta2V5LTAwMDE="  # noqa: S105
DEVELOPMENT_FIELD_HASH_KEY = "development-only-field-hash-key-do-not-use-in-production"  # noqa: S105
FIELD_ENCRYPTION_KEYS = [key.strip() for key in env.list("FIELD_ENCRYPTION_KEYS", default=[]) if key.strip()]
FIELD_HASH_KEY = env.str("FIELD_HASH_KEY", default="")
if PRODUCTION:
    if not FIELD_ENCRYPTION_KEYS or DEVELOPMENT_FIELD_ENCRYPTION_KEY in FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs FIELD_ENCRYPTION_KEYS set to its own Fernet keys"
        )
    if FIELD_HASH_KEY == DEVELOPMENT_FIELD_HASH_KEY or len(FIELD_HASH_KEY) < 32:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs FIELD_HASH_KEY set to a random value of 32+ characters"
        )
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [DEVELOPMENT_FIELD_ENCRYPTION_KEY]
FIELD_HASH_KEY = FIELD_HASH_KEY or DEVELOPMENT_FIELD_HASH_KEY
_BASE64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
if any(len(key) != 44 or key[43] != "=" or not set(key[:43]) <= _BASE64URL for key in FIELD_ENCRYPTION_KEYS):
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must hold Fernet keys: 32 url-safe base64-encoded bytes (44 characters) each"
    )

# --- Celery --------------------------------------------------------------------------------------
# With no broker configured, tasks run in-process (the embedded default); with one, on the workers.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The queue tasks go to unless routed; a chord's chunks follow it. (Tests give each worker its own.)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- the collections scan --------------------------------------------------------------------------
# Beat runs the scan every night at this local time (TIME_ZONE); the entry is defined here and the
# database scheduler shows it in the admin's periodic tasks.
COLLECTIONS_SCAN_AT = env.str("COLLECTIONS_SCAN_AT", default="01:00")
# Loans per chunk: a chunk is one transaction and one task, so workers on many machines share a run.
COLLECTIONS_SCAN_CHUNK_SIZE = env.int("COLLECTIONS_SCAN_CHUNK_SIZE", default=100_000)
try:
    _scan_hour, _scan_minute = (int(part) for part in COLLECTIONS_SCAN_AT.split(":"))
    if not (0 <= _scan_hour < 24 and 0 <= _scan_minute < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(f"COLLECTIONS_SCAN_AT must be HH:MM, got {COLLECTIONS_SCAN_AT!r}") from None
if COLLECTIONS_SCAN_CHUNK_SIZE < 1:
    raise ImproperlyConfigured("COLLECTIONS_SCAN_CHUNK_SIZE must be a positive number of loans")
CELERY_BEAT_SCHEDULE = {
    "collections-nightly-scan": {
        "task": "debt_collections.scan",
        "schedule": crontab(hour=_scan_hour, minute=_scan_minute),
        # A scan that could not start within six hours waits for the next night (which resumes it).
        "options": {"expires": 6 * 3600},
    },
}

# --- collection notices ----------------------------------------------------------------------------
# E-mail leaves through Django's EMAIL_BACKEND (files under MEDIA_ROOT/mail/ in development; SMTP in
# production, set with EMAIL_HOST and friends). SMS and letters go through the backends below
# (debt_collections.channels): the development defaults record SMS in memory (and log them) and
# write letters as PDFs under MEDIA_ROOT/letters/; production points them at a provider's class.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.filebased.EmailBackend",
)
# The development backend writes each e-mail as a file here (one file per connection).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(MEDIA_ROOT / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="collections@example.com")
COLLECTIONS_NOTICE_FROM_EMAIL = env.str("COLLECTIONS_NOTICE_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)
COLLECTIONS_NOTICE_EMAIL_DOMAIN = env.str(
    "COLLECTIONS_NOTICE_EMAIL_DOMAIN", default=COLLECTIONS_NOTICE_FROM_EMAIL.rpartition("@")[2] or "localhost"
)
COLLECTIONS_SMS_BACKEND = env.str(
    "COLLECTIONS_SMS_BACKEND", default="debt_collections.channels.RecordingSMSBackend"
)
COLLECTIONS_LETTER_BACKEND = env.str(
    "COLLECTIONS_LETTER_BACKEND", default="debt_collections.channels.FileLetterBackend"
)
# The deadline a notice gives: the business date it is sent plus this many days.
COLLECTIONS_NOTICE_PAY_BY_DAYS = env.int("COLLECTIONS_NOTICE_PAY_BY_DAYS", default=14)
if COLLECTIONS_NOTICE_PAY_BY_DAYS < 1:
    raise ImproperlyConfigured("COLLECTIONS_NOTICE_PAY_BY_DAYS must be at least 1 day")
# The notices the scan queues when a case enters a stage, one per channel (JSON in the environment:
# {"notice": ["letter", "email"], ...}; a stage left out sends none).
COLLECTIONS_STAGE_NOTICE_CHANNELS = env.json(
    "COLLECTIONS_STAGE_NOTICE_CHANNELS",
    default={
        "early_warning": ["sms", "email"],
        "follow_up_call": ["sms"],
        "notice": ["letter", "email", "sms"],
        "restructuring": ["letter", "email"],
        "legal_referral": ["letter"],
    },
)
_NOTICE_STAGES = {"early_warning", "follow_up_call", "notice", "restructuring", "legal_referral"}
if not isinstance(COLLECTIONS_STAGE_NOTICE_CHANNELS, dict) or any(
    stage not in _NOTICE_STAGES
    or not isinstance(channels, list)
    or not set(channels) <= {"sms", "email", "letter"}
    for stage, channels in COLLECTIONS_STAGE_NOTICE_CHANNELS.items()
):
    raise ImproperlyConfigured(
        "COLLECTIONS_STAGE_NOTICE_CHANNELS maps stages (early_warning, follow_up_call, notice, restructuring,"
        " legal_referral) to lists of channels (sms, email, letter)"
    )
# Notices one worker task sends: the queue is handed to the workers in batches of this size.
COLLECTIONS_NOTICE_BATCH = env.int("COLLECTIONS_NOTICE_BATCH", default=500)
if COLLECTIONS_NOTICE_BATCH < 1:
    raise ImproperlyConfigured("COLLECTIONS_NOTICE_BATCH must be at least 1")
# Queued notices go out every 30 minutes: those queued during quiet hours leave once they end.
CELERY_BEAT_SCHEDULE["collections-send-notices"] = {
    "task": "debt_collections.notices_send_queued",
    "schedule": crontab(minute="*/30"),
    "options": {"expires": 25 * 60},
}

# --- personal data retention -------------------------------------------------------------------------
# Borrowers with no active loan whose last activity (loan or case closed, contact attempt) is older
# than this are anonymised, unless under legal hold; the collection records stay (NIFA 2018: at
# least 5 years; Reg F 1006.100: 3). Beat runs the purge weekly, Sundays 03:30 local time.
RETENTION_YEARS = env.int("RETENTION_YEARS", default=5)
if RETENTION_YEARS < 1:
    raise ImproperlyConfigured("RETENTION_YEARS must be a whole number of years, at least 1")
# After the nightly scan has refreshed every loan: on a month's last day, keep each delinquent loan's
# bucket (loans.BucketSnapshot) for the roll-rate and ageing dashboards.
CELERY_BEAT_SCHEDULE["bucket-snapshot"] = {
    "task": "loans.snapshot_buckets",
    "schedule": crontab(hour=(_scan_hour + 3) % 24, minute=_scan_minute),
    "options": {"expires": 12 * 3600},
}
CELERY_BEAT_SCHEDULE["retention-purge"] = {
    "task": "compliance.retention_purge",
    "schedule": crontab(day_of_week="sunday", hour=3, minute=30),
    "options": {"expires": 24 * 3600},
}

# --- API -----------------------------------------------------------------------------------------
# Partner systems authenticate with partner keys (Authorization: Bearer ck_...); staff with their
# session or a DRF token (Authorization: Token ...). See api/ and the README's "Partner API".
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.PartnerKeyAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PartnerKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {"partner_key": env.str("API_THROTTLE_RATE", default="6000/min")},
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Request bodies above this size are refused with 413 before they are read (a batch of 1,000
# payments is about 200 kB).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2621440)
# How long an Idempotency-Key's first response is kept (hours; the contract says at least 24).
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)
if API_IDEMPOTENCY_HOURS < 24:
    raise ImproperlyConfigured("API_IDEMPOTENCY_HOURS must be at least 24")
SPECTACULAR_SETTINGS = {
    "TITLE": "Loan collections API",
    "DESCRIPTION": (
        "The contract partner systems code against: the loan book (borrowers, loans, schedules, "
        "payments), cases and their work, contact checks, webhooks. Authenticate with "
        "`Authorization: Bearer <partner key>`. Errors are `application/problem+json` (RFC 9457)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set, where several models or fields share a field name ("status", "channel").
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "debt_collections.models.Case.Status",
        "PromiseStatusEnum": "debt_collections.models.PromiseToPay.Status",
        "NoticeStatusEnum": "debt_collections.models.Notice.Status",
        "RestructuringStatusEnum": "debt_collections.models.Restructuring.Status",
        "LegalReferralStatusEnum": "debt_collections.models.LegalReferral.Status",
        "RestructuringKindEnum": "debt_collections.models.Restructuring.Kind",
        "ContactPointKindEnum": "loans.models.ContactPoint.Kind",
        "ContactChannelEnum": "compliance.models.Channel",
        "CaseContactChannelEnum": "api.views.cases.API_CONTACT_CHANNELS",
        "NoticeChannelEnum": "debt_collections.models.NoticeChannel",
        "StageEnum": "debt_collections.models.StageChoices",
        "PaymentStatusEnum": "loans.models.Payment.Status",
        "PaymentChannelEnum": "loans.models.Payment.Channel",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}
# The cache throttling counts in: Redis when CACHE_URL is set (every gunicorn worker shares the count),
# this process's memory otherwise (development).
CACHE_URL = env.str("CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- webhooks --------------------------------------------------------------------------------------
# Events wait in the outbox until the dispatch task hands them to each subscription; a failed delivery
# is retried with exponential backoff (WEBHOOK_RETRY_BASE_SECONDS doubling, at most an hour apart)
# until WEBHOOK_RETRY_HOURS after its first attempt, then marked failed (a person may redeliver).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_HOURS = env.int("WEBHOOK_RETRY_HOURS", default=24)
WEBHOOK_BATCH = env.int("WEBHOOK_BATCH", default=200)
# A partner may not point webhooks at this machine or a private network (allowed only when DEBUG is on,
# for a receiver on the developer's own machine).
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=DEBUG)
# Idempotency records older than API_IDEMPOTENCY_HOURS are purged hourly.
CELERY_BEAT_SCHEDULE["api-idempotency-purge"] = {
    "task": "api.idempotency_purge",
    "schedule": crontab(minute=17),
    "options": {"expires": 3000},
}
CELERY_BEAT_SCHEDULE["webhooks-deliver"] = {
    "task": "api.webhooks_deliver",
    "schedule": env.float("WEBHOOK_DISPATCH_SECONDS", default=15.0),
    "options": {"expires": 60},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
