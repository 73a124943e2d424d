"""A registration commits asynchronously, so that the rows every registration queues on
are free while the disk syncs, and is flushed before anyone is told of it; readers
that hand the log out flush before they read up to the head.

These tests commit (transaction=True): that is where the commits differ.
"""

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audits.context import audit_context
from audits.durability import FLUSH_SQL as FLUSH
from audits.durability import flush_wal
from audits.models import AuditEvent
from registry import registration
from tests.factories import version_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/models/fraud/versions/"
ASYNC = "set_config('synchronous_commit', 'off', true)"


def _register(api, seed):
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, json.dumps(version_payload(seed)), content_type="application/json")
    return response, [query["sql"] for query in queries.captured_queries]


def _setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def _lsn(function: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def test_a_registration_commits_asynchronously_and_is_flushed_before_the_answer(ci_api):
    response, statements = _register(ci_api, 1)

    assert response.status_code == 201
    registering = [sql for sql in statements if "INSERT INTO" in sql]
    assert len(registering) == 1 and ASYNC in registering[0]
    # The flush is the last thing the request asks of the database.
    assert statements[-1] == FLUSH
    assert statements.index(registering[0]) < statements.index(FLUSH)


def test_the_asynchronous_commit_ends_with_the_registration(ci_api):
    assert _setting() == "on"
    assert _register(ci_api, 1)[0].status_code == 201

    # The next transaction on the same connection commits synchronously again.
    assert _setting() == "on"
    with transaction.atomic():
        assert _setting() == "on"


def test_a_retry_is_flushed_before_it_is_answered(ci_api):
    first, _ = _register(ci_api, "same")
    again, statements = _register(ci_api, "same")

    assert (first.status_code, again.status_code) == (201, 200)
    assert statements[-1] == FLUSH
    assert AuditEvent.objects.filter(action="model_version.registered").count() == 1


def test_a_registration_inside_a_transaction_commits_with_it(fraud, ci):
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), audit_context():
        registration.model_version_register(actor=ci, model="fraud", **version_payload(1))
    statements = [query["sql"] for query in queries.captured_queries]

    # The caller's transaction decides its commit, which is synchronous.
    assert not any(ASYNC in sql for sql in statements)
    assert FLUSH not in statements


def test_flushing_leaves_nothing_written_off_the_disk(fraud, ci):
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    try:
        with audit_context():
            registration.model_version_register(actor=ci, model="fraud", **version_payload(1))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = on")
    written = _lsn("pg_current_wal_insert_lsn")

    flush_wal()

    assert _lsn("pg_current_wal_flush_lsn") >= written


def test_the_log_is_flushed_before_it_is_verified_or_exported(make_user, api_for):
    officer = api_for(make_user("cora", "compliance"))
    for path in ("/api/v1/audit/verify/", "/api/v1/audit/export/?format=jsonl"):
        with CaptureQueriesContext(connection) as queries:
            response = officer.get(path)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
        assert response.status_code == 200, path
        statements = [query["sql"] for query in queries.captured_queries]
        head = next(i for i, sql in enumerate(statements) if "audits_chainhead" in sql)
        assert statements[head + 1] == FLUSH, path
