import importlib.util
import os
import uuid

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from audits.context import audit_context
from audits.triggers import every_statement
from tests import keys

REQUIRE_SERVICES = os.environ.get("MODELGOV_REQUIRE_SERVICES") == "1"
# Browser tests drive Debian's Chromium; no browser is ever downloaded.
CHROMIUM = "/usr/bin/chromium"


def _patch_flush():
    """Transactional tests end with a flush (TRUNCATE on PostgreSQL, DELETE on SQLite),
    which the audit log's triggers rightly refuse. Tests step around them the way an
    operator would have to: visibly, and only for the flush."""
    from django.db.backends.postgresql.base import DatabaseOperations as PgOps
    from django.db.backends.sqlite3.base import DatabaseOperations as SqliteOps

    pg_flush, sqlite_flush = PgOps.sql_flush, SqliteOps.sql_flush

    def pg(self, style, tables, **kwargs):
        sql = pg_flush(self, style, tables, **kwargs)
        return [
            "SET session_replication_role = replica",
            *sql,
            "SET session_replication_role = DEFAULT",
        ]

    def sqlite(self, style, tables, **kwargs):
        sql = sqlite_flush(self, style, tables, **kwargs)
        return [
            *every_statement("sqlite", install=False),
            *sql,
            *every_statement("sqlite", install=True),
        ]

    PgOps.sql_flush, SqliteOps.sql_flush = pg, sqlite


_patch_flush()


@pytest.hookimpl(trylast=True)  # after -m has deselected what this run leaves out
def pytest_collection_modifyitems(config, items):
    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    for item in items:
        if item.get_closest_marker("postgres") and vendor != "postgresql":
            _unavailable(item, "needs PostgreSQL: set DATABASE_URL=postgresql://...")
        if item.get_closest_marker("redis") and not settings.BROKER_URL:
            _unavailable(item, "needs Redis: set REDIS_URL=redis://...")
        if item.get_closest_marker("browser") and not _browser_available():
            _unavailable(item, f"needs Chromium at {CHROMIUM} (apt-get install chromium)")


def _browser_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and importlib.util.find_spec("playwright") is not None


def _unavailable(item, reason: str):
    if REQUIRE_SERVICES:
        raise pytest.UsageError(f"{item.nodeid}: {reason} (MODELGOV_REQUIRE_SERVICES=1)")
    item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _production_keys(settings):
    """The suite runs with DEBUG off, as production does, so with keys of its own."""
    settings.SECRET_KEY = keys.SECRET_KEY
    settings.AUDIT_SIGNING_KEY = keys.AUDIT_SIGNING_KEY


@pytest.fixture(autouse=True)
def _no_remembered_tokens():
    """Each test starts with workers that have authenticated no token yet, nor recorded
    any token's use."""
    from governance.authentication import remembered_tokens, token_uses

    remembered_tokens.clear()
    token_uses.clear()
    yield
    remembered_tokens.clear()
    token_uses.clear()


@pytest.fixture(autouse=True)
def _no_counted_requests(settings):
    """Each test starts with the throttles having counted nothing: a cache namespace of
    its own (clearing a Redis cache would empty the database the broker shares)."""
    settings.CACHES = {
        name: {**conf, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for name, conf in settings.CACHES.items()
    }


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Tasks run in-process after commit, unless a test drives a real worker."""
    from config.celery import app

    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def roles(db):
    from governance.services import policies_setup, roles_setup

    with audit_context():
        roles_setup(actor=None)
        policies_setup(actor=None)


@pytest.fixture
def make_user(roles):
    from governance.services import role_grant, user_upsert

    def make(username: str, *role_names: str, password: str = "correct-horse-battery"):
        with audit_context():
            user, _ = user_upsert(actor=None, username=username, password=password)
            for role in role_names:
                role_grant(actor=None, user=user, role=role)
        user.refresh_from_db()
        return user

    return make


@pytest.fixture
def api_for():
    """An APIClient that authenticates with a real API token of the user."""
    from governance.services import token_create

    def client(user=None, scheme: str = "Bearer") -> APIClient:
        api = APIClient()
        if user is not None:
            with audit_context():
                _, secret = token_create(actor=None, user=user, name="test")
            api.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")
        return api

    return client


@pytest.fixture
def vendor():
    return connection.vendor


# The cast many tests share: an owner, her model "fraud", and a CI account.
@pytest.fixture
def owner(make_user):
    return make_user("olivia", "owner")


@pytest.fixture
def fraud(owner):
    from tests.factories import make_model

    return make_model(owner, "fraud")


@pytest.fixture
def ci(make_user):
    return make_user("ci-bot", "ci")


@pytest.fixture
def ci_api(fraud, ci, api_for):
    return api_for(ci)
