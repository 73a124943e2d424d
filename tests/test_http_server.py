"""The production HTTP server: gunicorn, parsing requests with its C extension, in
front of the WSGI application."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from audits.context import audit_context
from governance.services import token_create
from registry.models import ModelVersion
from tests.factories import version_payload

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
