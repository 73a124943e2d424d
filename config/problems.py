"""RFC 9457 problem details for every error the service answers."""

import json
import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from rest_framework import exceptions
from rest_framework.views import set_rollback

from registry.errors import ServiceError

logger = logging.getLogger("modelgov.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    status: int,
    *,
    detail: str,
    code: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": f"urn:modelgov:problem:{code}" if code else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into {"field.sub": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_errors(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    name = f"{prefix}.{index}" if prefix else str(index)
                    for field, messages in flatten_errors(item, name).items():
                        out.setdefault(field, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _first_message(errors: dict[str, list[str]]) -> str:
    for field, messages in errors.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every failure becomes problem+json."""
    set_rollback()
    if isinstance(exc, ServiceError):
        return problem_response(
            exc.status_code, detail=exc.detail, code=exc.code, errors=exc.errors
        )
    if isinstance(exc, Http404):
        return problem_response(404, detail=str(exc) or "Not found.", code="not-found")
    if isinstance(exc, PermissionDenied):
        return problem_response(
            403, detail=str(exc) or "You may not do this.", code="permission-denied"
        )
    if isinstance(exc, DjangoValidationError):
        errors = flatten_errors(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return problem_response(
            400, detail=_first_message(errors), code="validation-error", errors=errors
        )
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        return problem_response(413, detail="The request body is too large.", code="too-large")
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        return problem_response(
            400, detail=_first_message(errors), code="validation-error", errors=errors
        )
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return problem_response(
            exc.status_code, detail=str(detail), code=str(code).replace("_", "-"), headers=headers
        )
    logger.exception("Unhandled error in %s", context.get("view"))
    return problem_response(500, detail="An unexpected error occurred.", code="server-error")


def handler404(request, exception=None):
    return problem_response(404, detail="No such resource.", code="not-found")


def handler500(request):
    return problem_response(500, detail="An unexpected error occurred.", code="server-error")


def handler403(request, exception=None):
    return problem_response(403, detail="You may not do this.", code="permission-denied")


def handler400(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return problem_response(413, detail="The request body is too large.", code="too-large")
    return problem_response(400, detail="Bad request.", code="bad-request")
