"""What the OpenAPI schema says beyond each view's own declarations: the Bearer token
scheme, and the problem+json answers every operation can give.

An operation's error statuses follow from what it is, so no view repeats them: 401 and
403 where it needs credentials, 400 where it reads a body or query parameters, 404
where its path names an object or it pages a list, 413 and 415 where it reads a body,
429 where a throttle counts it. A view declares only what its services add (a 409, a
404 for an object named in the body) with `problem("why")` in its responses, and
whatever 4xx it declares is answered as problem+json too.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.throttling import ScopedRateThrottle

from config.problems import PROBLEM_CONTENT_TYPE


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "governance.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token, as `Authorization: Bearer TOKEN` "
            "(`Authorization: Token TOKEN` is accepted too).",
        }


class ProblemSerializer(serializers.Serializer):
    """An error, as RFC 9457 problem details."""

    type = serializers.CharField(
        help_text="`urn:modelgov:problem:<code>` naming the error, or `about:blank`."
    )
    title = serializers.CharField(help_text="The HTTP status's phrase.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For invalid input: field (a dotted path inside a field, such as "
        "`tags.team`) -> messages.",
    )


def problem(description: str) -> OpenApiResponse:
    """A problem+json answer, for a view's `@extend_schema(responses={status: ...})`."""
    return OpenApiResponse(response=ProblemSerializer, description=description)


DERIVED = {
    400: "Invalid input: `errors` names each field refused.",
    401: "No credentials, or an unknown, expired or revoked token.",
    403: "The caller's role or rights do not allow this.",
    404: "No such object, or one the caller may not see.",
    413: "The request body is too large.",
    415: "The request body is not of a media type this operation reads.",
    429: "Too many of these requests: retry after the seconds in Retry-After.",
}

EMPTY = {"type": "string", "maxLength": 0}

HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the request may be made again.",
            "schema": {"type": "integer"},
        }
    },
}


class AutoSchema(SpectacularAutoSchema):
    def _get_request_body(self, direction="request"):
        # drf-spectacular documents bodies for POST, PUT and PATCH only; a DELETE that
        # reads one (a grant taken away) declares it with @extend_schema(request=...).
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # Fields a serializer refuses by name (StrictSerializer.read_only_messages): a
        # body that holds one is invalid.
        for name, message in getattr(serializer, "read_only_messages", {}).items():
            schema.setdefault("properties", {})[name] = {"not": {}, "description": message}
        # What the fields alone do not say: extra keys refused, one of two fields required.
        schema.update(getattr(serializer, "schema_extra", {}))
        return schema

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            if parameter["in"] == "query" and schema != {"type": "string"}:
                # Every query parameter left empty (`?stage=`) is read as left out.
                parameter["schema"] = {"anyOf": [schema, EMPTY]}
        responses = operation["responses"]
        for status in self.problem_statuses(operation):
            responses.setdefault(str(status), {"description": DERIVED[status]})
        problem_schema = self.resolve_serializer(ProblemSerializer, "response").ref
        for code, response in responses.items():
            if code.isdigit() and int(code) >= 400:
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": problem_schema}}
                if int(code) in HEADERS:
                    response["headers"] = {**HEADERS[int(code)], **response.get("headers", {})}
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def problem_statuses(self, operation: dict) -> list[int]:
        security = operation.get("security", [])
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        statuses = []
        if security and {} not in security:
            statuses += [401, 403]
        if has_body or any(p["in"] == "query" for p in parameters):
            statuses.append(400)
        if any(p["in"] == "path" or p["name"] == "page" for p in parameters):
            statuses.append(404)
        if has_body:
            statuses += [413, 415]
        if self.is_throttled():
            statuses.append(429)
        return statuses

    def is_throttled(self) -> bool:
        # DRF's ScopedRateThrottle, installed for every view, counts only views that name
        # a scope.
        return any(
            not isinstance(throttle, ScopedRateThrottle)
            or getattr(self.view, "throttle_scope", None)
            for throttle in self.view.get_throttles()
        )
