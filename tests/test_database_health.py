"""The per-request database health check: no round trip for a connection that is
fine, a fresh connection for one the server dropped."""

import select
import time

import psycopg
import pytest
from django.db import close_old_connections, connection, connections

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _other_connection():
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )


def _last_query(pid: int) -> str:
    with _other_connection() as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[
            0
        ]


def test_it_is_the_backend_with_health_checks_on():
    assert type(connections["default"]).__module__ == "config.postgresql.base"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_healthy_idle_connection_is_found_usable_without_a_query():
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT 'the last query sent'")
    pid = connection.connection.info.backend_pid

    assert connection.is_usable()
    # Django's own check would have sent SELECT 1, and the server would show it.
    assert _last_query(pid) == "SELECT 'the last query sent'"


def test_a_connection_the_server_dropped_is_found_unusable():
    connection.ensure_connection()
    socket = connection.connection.pgconn.socket
    with _other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    readable, _, _ = select.select([socket], [], [], 10)
    assert readable, "the server did not close the connection"

    assert not connection.is_usable()
    connection.close()


def test_the_request_after_the_server_dropped_the_connection_succeeds(make_user, api_for):
    api = api_for(make_user("ci-bot", "ci"))
    assert api.get("/api/v1/models/").status_code == 200
    pid = connection.connection.info.backend_pid
    with _other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):
            gone = other.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid]
            ).fetchone()[0]
            if gone:
                break
            time.sleep(0.05)
    # What a server does between requests (Django's test client skips it).
    close_old_connections()

    response = api.get("/api/v1/models/")

    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != pid
