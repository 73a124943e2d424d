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
