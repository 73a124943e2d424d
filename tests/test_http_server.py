"""The production HTTP server: gunicorn, parsing requests with its C extension, in
front of the WSGI application, with worker threads that a client reading slowly
cannot all hold."""

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from audits.bulk import append_events
from audits.context import audit_context
from audits.models import AuditEvent
from governance.services import token_create
from registry.models import ModelVersion
from tests.factories import version_payload
from tests.keys import production_environment

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"

REQUEST = (
    b"POST /api/v1/models/fraud/versions/ HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"Authorization: Bearer secret\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 2\r\n"
    b"\r\n"
    b"{}"
)


def test_gunicorn_parses_requests_with_its_c_extension():
    # "auto", the default, takes gunicorn_h1c when it is installed; "fast" refuses to
    # parse without it.
    assert Config().http_parser == "auto"
    config = Config()
    config.set("http_parser", "fast")

    request = next(iter(RequestParser(config, [REQUEST], ("127.0.0.1", 50000))))

    assert (request.method, request.path) == ("POST", "/api/v1/models/fraud/versions/")
    assert ("AUTHORIZATION", "Bearer secret") in request.headers
    assert request.body.read() == b"{}"


def _wsgi(body: bytes, **headers: str) -> tuple[str, dict[str, str], bytes]:
    """A request through config.wsgi, as gunicorn hands it over: a body it has
    de-chunked, and its headers as HTTP_* variables."""
    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/models/fraud/versions/",
        "wsgi.input": io.BytesIO(body),
        **headers,
    }
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(response_headers)

    # As Django's test client does: the test's transaction holds the connection that
    # the end of a request would otherwise close.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], content


@pytest.mark.django_db
def test_a_chunked_body_is_answered_411_and_registers_nothing(fraud, ci):
    with audit_context():
        _, secret = token_create(actor=None, user=ci, name="chunks")
    body = json.dumps(version_payload(1)).encode()
    common = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "CONTENT_TYPE": "application/json"}

    status, headers, content = _wsgi(body, HTTP_TRANSFER_ENCODING="chunked", **common)

    assert status == "411 Length Required"
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(content)
    assert problem["type"] == "urn:modelgov:problem:length-required"
    assert "Content-Length" in problem["detail"]
    assert "X-Request-ID" in headers
    assert not ModelVersion.objects.exists()

    # The same body with its length registers.
    status, _, content = _wsgi(body, CONTENT_LENGTH=str(len(body)), **common)
    assert status == "201 Created", content
    assert ModelVersion.objects.get().version == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, timeout: float, token: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _stalled_export(port: int, token: str) -> socket.socket:
    """A client that asks for the whole log as JSON Lines, reads the answer's first
    bytes, and then reads no more."""
    sock = socket.socket()
    # Set before connecting, a small receive buffer stays small: left alone, the kernel
    # grows it to tens of megabytes, and the server could write the whole export into it.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /api/v1/audit/export/?format=jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
    )
    head = sock.recv(1024)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def _exported() -> list[dict]:
    return list(AuditEvent.objects.filter(action="audit.exported").values_list("data", flat=True))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("options", "worker", "answered"),
    [
        ([], "config.workers.ThreadWorker", True),
        (["--worker-class", "sync", "--threads", "1"], "sync", False),
    ],
    ids=["deploy config", "sync worker"],
)
def test_a_client_that_stops_reading_an_export_holds_up_no_one_else(
    options, worker, answered, make_user, tmp_path
):
    carla = make_user("carla", "compliance")
    with audit_context():
        _, token = token_create(actor=None, user=carla, name="export")
    # Some 16 MB of JSON Lines: several times what the socket buffers between the two
    # ends hold (Linux lets the sender's grow to 4 MB by default).
    append_events(
        {
            "actor": "importer",
            "action": "model.imported",
            "object_type": "model",
            "object_id": n,
            "data": {"note": "x" * 400},
        }
        for n in range(20_000)
    )
    logged = AuditEvent.objects.count()
    db = connection.settings_dict
    port, log = _free_port(), tmp_path / "gunicorn.log"
    env = production_environment(
        DATABASE_URL=(
            f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        ),
        REDIS_URL="",
        CELERY_BROKER_URL="",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", str(GUNICORN_CONF), *options],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    slow = None
    try:
        ready, deadline = False, time.monotonic() + 20
        while not ready and time.monotonic() < deadline and server.poll() is None:
            try:
                ready = _get(port, "/healthz", timeout=1) == 200
            except OSError:
                time.sleep(0.1)
        assert ready and f"Using worker: {worker}" in log.read_text(), log.read_text()

        slow = _stalled_export(port, token)
        if answered:
            assert _get(port, "/healthz", timeout=5) == 200
            assert _get(port, "/api/v1/models/", timeout=5, token=token) == 200
        else:
            # The one sync worker is writing the export, which waits for its reader.
            with pytest.raises(TimeoutError):
                _get(port, "/healthz", timeout=3)
        # The export was still under way, not over before the others asked.
        assert _exported() == []

        while slow.recv(1 << 20):
            pass
        deadline = time.monotonic() + 10
        while not _exported() and time.monotonic() < deadline:
            time.sleep(0.1)
        [exported] = _exported()
        assert (exported["complete"], exported["rows"]) == (True, logged)
    finally:
        if slow is not None:
            slow.close()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
