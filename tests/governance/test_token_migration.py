"""Tokens made before tokens expired are given the default lifetime from their
creation by the migration that adds the expiry, which also replaces the token
table's epoch trigger while rows are filled (PostgreSQL refuses to alter a table
with deferred trigger events pending)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from governance.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("governance", "0003_credential_epoch")


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


def _leaves():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_existing_tokens_expire_the_default_lifetime_after_their_creation(settings):
    settings.API_TOKEN_LIFETIME_DAYS = 90
    try:
        executor = _migrate([BEFORE])
        old = executor.loader.project_state([BEFORE]).apps
        user = old.get_model("auth", "User").objects.create(username="early")
        tokens = old.get_model("governance", "ApiToken").objects
        token = tokens.create(user_id=user.pk, key_hash="a" * 64, prefix="mg_a")
        tokens.filter(pk=token.pk).update(created_at=datetime(2026, 1, 1, 12, tzinfo=UTC))
    finally:
        _migrate(_leaves())

    migrated = ApiToken.objects.get(pk=token.pk)
    assert migrated.expires_at == datetime(2026, 4, 1, 12, tzinfo=UTC)
    assert migrated.last_used_at is None
