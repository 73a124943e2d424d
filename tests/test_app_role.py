"""The service runs as a database role that may append to the audit log and nothing
more there: PostgreSQL itself refuses it the rest, and gunicorn, a Celery worker and
beat do all their work as that role."""

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
from http.cookies import SimpleCookie
from io import StringIO
from urllib.parse import urlencode

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from psycopg import sql

from audits.context import audit_context
from audits.models import AuditCheckpoint, AuditEvent
from audits.services import audit_checkpoint_create
from governance.services import token_create
from tests.evaluation_sets import binary_set, to_csv
from tests.factories import sha
from tests.governance.test_worker import ROOT, Redis, Worker, free_port, wait_for
from tests.keys import production_environment

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = secrets.token_urlsafe(16)
CELERY = [sys.executable, "-m", "celery", "-A", "config"]


@pytest.fixture
def app_role():
    """The service's role on the test database; roles belong to the whole cluster, so
    its name is this run's own and it is dropped afterwards."""
    name = f"modelgov_app_test_{os.getpid()}"
    out = StringIO()
    call_command("create_app_role", name, "--password", PASSWORD, stdout=out)
    assert f"Created role {name}" in out.getvalue()
    yield name
    with connection.cursor() as cursor:
        for statement in ("DROP OWNED BY {}", "DROP ROLE {}"):
            cursor.execute(
                sql.SQL(statement).format(sql.Identifier(name)).as_string(connection.connection)
            )


def database_url(role: str) -> str:
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgresql://{role}:{PASSWORD}@{host}/{db['NAME']}"


def refused(conn, statement: str) -> psycopg.errors.InsufficientPrivilege:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement)
    # 42501 is also what the append-only triggers raise; aclcheck_error is PostgreSQL's
    # own privilege check, which refuses before any trigger would run.
    assert caught.value.sqlstate == "42501"
    assert caught.value.diag.source_function == "aclcheck_error", caught.value
    return caught.value


def test_postgresql_refuses_the_app_role_anything_but_appending_to_the_log(roles, app_role):
    with audit_context():
        audit_checkpoint_create(actor=None)
    events = AuditEvent.objects.count()

    with psycopg.connect(database_url(app_role), autocommit=True) as conn:
        for statement in (
            "UPDATE audits_auditevent SET actor = 'mallory'",
            "DELETE FROM audits_auditevent",
            "TRUNCATE audits_auditevent",
            "UPDATE audits_auditcheckpoint SET hash = repeat('0', 64)",
        ):
            assert "permission denied for table" in str(refused(conn, statement))
        for statement in (
            "ALTER TABLE audits_auditevent DISABLE TRIGGER USER",
            "DROP TRIGGER audit_refuse_update_delete ON audits_auditevent",
        ):
            assert "must be owner of" in str(refused(conn, statement))
        assert "permission denied for schema public" in str(
            refused(conn, "CREATE TABLE audits_shadow (seq bigint)")
        )

        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner ="
            " (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
        assert owned == (0,)

    assert AuditEvent.objects.count() == events


def manage(env: dict[str, str], *args: str) -> str:
    """A management command in a process of its own; its output once it exits 0."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Process:
    """A service process in its own process group, its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log):
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


class Api:
    """HTTP to the live server, as a client outside it would speak it."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}  # set by the last answer

    def call(
        self, method, path, token=None, *, json_body=None, multipart=None, form=None, cookies=None
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if multipart is not None:
            body = encode_multipart(BOUNDARY, multipart)
            headers["Content-Type"] = MULTIPART_CONTENT
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            cookies = SimpleCookie()
            for header in response.headers.get_all("Set-Cookie") or []:
                cookies.load(header)
            self.cookies = {name: morsel.value for name, morsel in cookies.items()}
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def ok(self, method, path, token, expected=200, **body):
        status, headers, content = self.call(method, path, token, **body)
        assert status == expected, (status, content[:2000])
        return headers, content

    def answers(self) -> bool:
        try:
            return self.call("GET", "/healthz")[0] == 200
        except OSError:
            return False


@pytest.fixture
def service(app_role, tmp_path):
    """gunicorn, a worker and beat as the app role, on a private Redis."""
    redis = Redis(tmp_path)
    redis.start()
    port = free_port()
    env = production_environment(
        DATABASE_URL=database_url(app_role),
        REDIS_URL=redis.url,
        CELERY_BROKER_URL=redis.url,
        MEDIA_ROOT=str(tmp_path / "media"),
        AUDIT_CHECKPOINT_INTERVAL="1",
    )
    worker = Worker(redis.url, tmp_path / "worker.log")
    worker.env = {**env, "CELERY_VISIBILITY_TIMEOUT": "5"}  # as the app role, not the owner
    processes = {
        "web": Process(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}"],
            env,
            tmp_path / "gunicorn.log",
        ),
        "beat": Process(
            [*CELERY, "beat", "--loglevel=INFO", "--schedule", str(tmp_path / "beat-schedule")],
            env,
            tmp_path / "beat.log",
        ),
    }
    try:
        worker.start()
        api = Api(port)
        wait_for(api.answers, 60, "gunicorn")
        yield api, env, processes
    finally:
        for process in processes.values():
            process.stop()
        worker.stop()
        redis.stop()


def test_web_worker_and_beat_work_as_the_app_role(make_user, app_role, service):
    api, env, processes = service
    tokens = {}
    for name, role in (("ci-bot", "ci"), ("carla", "compliance")):
        with audit_context():
            tokens[role] = token_create(actor=None, user=make_user(name, role), name="e2e")[1]
    ci, compliance = tokens["ci"], tokens["compliance"]
    # A credential change made as the app role: the epoch triggers run as it.
    reviewer = manage(
        env, "add_user", "rita", "--role", "reviewer", "--password", "pw-rita-1234", "--token"
    ).splitlines()[-1]
    # A session login through the admin (a session row, last_login, auth.login).
    api.ok("GET", "/admin/login/", None)
    csrf = api.cookies["csrftoken"]
    answer, headers, _ = api.call(
        "POST",
        "/admin/login/?next=/admin/",
        form={"username": "rita", "password": "pw-rita-1234", "csrfmiddlewaretoken": csrf},
        cookies={"csrftoken": csrf},
    )
    assert (answer, headers.get("Location")) == (302, "/admin/")
    session = {"csrftoken": csrf, "sessionid": api.cookies["sessionid"]}
    assert api.call("GET", "/admin/", cookies=session)[0] == 200

    api.ok("POST", "/api/v1/models/", ci, 201, json_body={"name": "fraud"})
    version = {"artifact_uri": "s3://artifacts/fraud/1", "artifact_sha256": sha(1)}
    api.ok("POST", "/api/v1/models/fraud/versions/", ci, 201, json_body=version)
    # The same artifact again: answered from the version already stored.
    api.ok("POST", "/api/v1/models/fraud/versions/", ci, 200, json_body=version)
    second = {"artifact_uri": "s3://artifacts/fraud/2", "artifact_sha256": sha(2)}
    api.ok("POST", "/api/v1/models/fraud/versions/", ci, 201, json_body=second)
    evaluation = StringIO(to_csv(binary_set(seed=1)).decode())
    evaluation.name = "eval.csv"
    api.ok(
        "POST",
        "/api/v1/models/fraud/versions/1/evaluation/",
        ci,
        201,
        multipart={"file": evaluation, "sensitive_features": "group", "score_column": "score"},
    )

    _, content = api.ok(
        "POST",
        "/api/v1/promotions/",
        ci,
        201,
        json_body={
            "model": "fraud",
            "version": 1,
            "target_stage": "production",
            "justification": "Fair and accurate on the holdout.",
        },
    )
    promotion = f"/api/v1/promotions/{json.loads(content)['id']}/"

    def promotion_status() -> str:
        return json.loads(api.ok("GET", promotion, compliance)[1])["status"]

    wait_for(lambda: promotion_status() != "checking", 60, "the gates on the worker")
    assert promotion_status() == "awaiting_approval"
    _, content = api.ok("POST", promotion + "approve/", reviewer, json_body={"comment": "ok"})
    assert json.loads(content)["status"] == "promoted"

    wait_for(AuditCheckpoint.objects.exists, 30, "a checkpoint from beat")
    processes["beat"].stop()
    headers, export = api.ok("GET", "/api/v1/audit/export/?format=jsonl", compliance)
    lines = [json.loads(line) for line in export.decode().splitlines()]
    assert [event["seq"] for event in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["hash"] == headers["X-Audit-Head-Hash"]

    # Every session on this database but the test's own is the service's.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        assert cursor.fetchall() == [(app_role,)]

    assert manage(env, "verify_audit").startswith("OK: ")

    actions = list(AuditEvent.objects.values_list("action", flat=True))
    for action in (
        "registered_model.created",
        "model_version.registered",
        "evaluation.uploaded",
        "promotion.requested",
        "check.passed",
        "check.unverified",
        "promotion.checks_passed",
        "promotion.approved",
        "promotion.promoted",
        "model_version.stage_changed",
        "audit.exported",
        "token.created",
        "auth.login",
    ):
        assert action in actions, action
    assert actions.count("model_version.registered") == 2
    # Fairness and validation; integrity cannot read an s3:// artifact.
    assert actions.count("check.passed") == 2
    assert actions.count("check.unverified") == 1
    checkpoint = AuditEvent.objects.filter(action="audit.checkpointed").first()
    assert (checkpoint.actor, checkpoint.actor_kind) == ("system", "system")
