"""Who is acting and from where: set per request by middleware, per task or command
by audit_context(); read by record()."""

import contextlib
import contextvars
import re
import uuid
from dataclasses import dataclass

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class AuditContext:
    request_id: str | None = None
    ip: str | None = None


# AuditContext is frozen, so sharing the default instance is safe.
_current: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "audit_context",
    default=AuditContext(),  # noqa: B039
)


def current() -> AuditContext:
    return _current.get()


def new_request_id(candidate: str | None = None) -> str:
    if candidate and _REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


@contextlib.contextmanager
def audit_context(*, request_id: str | None = None, ip: str | None = None):
    token = _current.set(AuditContext(request_id=request_id or new_request_id(), ip=ip))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
