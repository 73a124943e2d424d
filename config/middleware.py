"""Requests the service refuses before any view sees them."""

from config.problems import problem_response


def chunked_bodies_refused(get_response):
    """Django reads a request body by its Content-Length, so a body sent in chunks
    without one would reach the views as empty, and a registration would be refused
    for fields it did send. Such a request is answered 411 instead, asking for the
    length."""

    def middleware(request):
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
            "CONTENT_LENGTH"
        ):
            return problem_response(
                411,
                detail="Send the request body with a Content-Length header; "
                "chunked request bodies are not accepted.",
                code="length-required",
            )
        return get_response(request)

    return middleware


def nul_characters_refused(get_response):
    """PostgreSQL text holds no NUL character, so a NUL in the path or the query string
    would fail the first query that compares it (a 500). No object is named with one
    (404) and no parameter takes one (400), so the request is answered here."""

    def middleware(request):
        if "\x00" in request.path:
            return problem_response(404, detail="No such resource.", code="not-found")
        refused = sorted(
            {
                name or "non_field_errors"
                for name, values in request.GET.lists()
                if "\x00" in name or any("\x00" in value for value in values)
            }
        )
        if refused:
            message = "NUL characters are not accepted."
            return problem_response(
                400,
                detail=f"{refused[0]}: {message}",
                code="validation-error",
                errors={name: [message] for name in refused},
            )
        return get_response(request)

    return middleware
