"""The production HTTP server: gunicorn, parsing requests with its C extension."""

from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

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
