"""The registration statement's plan (PostgreSQL).

Connections prepare the statement, and after five executions PostgreSQL may keep a
generic plan, made once for any parameters, for the connection's life. A generic
plan made while a model had few versions must still find "is this artifact
registered already?" by the (model, artifact) index, or every registration reads
all of the model's versions and slows as the model grows.
"""

import json

import psycopg
import pytest
from django.db import connection

from registry.models import ModelVersion
from tests.factories import make_model, make_version, version_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _registration_statement(api) -> tuple[str, list]:
    """The SQL and parameters of one registration, as sent to the database."""
    sent = []

    def capture(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        response = api.post(
            "/api/v1/models/fraud/versions/", version_payload("planned"), format="json"
        )
    assert response.status_code == 201, response.content
    statements = [(sql, params) for sql, params in sent if "audit_head" in sql]
    assert len(statements) == 1, [sql[:80] for sql, _ in sent]
    return statements[0]


def _scans(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def _generic_plan_scans_of_versions(sql: str, params: list) -> list[dict]:
    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
    literal = psycopg.ClientCursor(connection.connection)
    table = ModelVersion._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE registration AS {numbered}")
        try:
            arguments = literal.mogrify(", ".join(["%s"] * len(params)), params)
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE registration({arguments})")
            (explained,) = cursor.fetchone()
        finally:
            cursor.execute("DEALLOCATE registration")
    document = explained if isinstance(explained, list) else json.loads(explained)
    return [
        node
        for node in _scans(document[0]["Plan"])
        if node.get("Relation Name") == table and node["Node Type"] != "ModifyTable"
    ]


def test_the_generic_plan_looks_for_the_artifact_by_the_model_and_artifact_index(
    make_user, api_for
):
    owner = make_user("olivia", "owner")
    fraud = make_model(owner, "fraud")
    # A model with a handful of versions, never analyzed: what a connection sees when
    # it settles on its generic plan early in a model's life.
    for seed in range(3):
        make_version(owner, fraud, seed)
    sql, params = _registration_statement(api_for(make_user("ci-bot", "ci")))

    scans = _generic_plan_scans_of_versions(sql, params)

    assert scans, "the statement no longer looks for the artifact among the versions"
    for node in scans:
        assert node["Node Type"] in {"Index Scan", "Index Only Scan"}, node
        assert node["Index Name"] == "artifact_unique_per_model", node
        assert "artifact_sha256" in node["Index Cond"], node
