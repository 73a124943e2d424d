"""Named errors raised by services; the API maps them to problem+json by status."""


class ServiceError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class InvalidInput(ServiceError):
    status_code = 400
    code = "validation-error"


class Forbidden(ServiceError):
    status_code = 403
    code = "permission-denied"


class NotFound(ServiceError):
    status_code = 404
    code = "not-found"


class RequestTooLarge(ServiceError):
    status_code = 413
    code = "too-large"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Unconfirmed(Exception):
    """A change made on a condition (what the actor's credentials still are) was not
    made, because the condition failed or the change needs more than the one
    statement that can require it. Nothing was stored; the caller decides afresh."""
