from django.conf import settings

from audits.context import audit_context, new_request_id


def client_ip(request) -> str | None:
    """REMOTE_ADDR, or the address the trusted proxies saw when they are configured."""
    trusted = settings.AUDIT_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if trusted and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= trusted:
            return hops[-trusted]
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        with audit_context(request_id=request_id, ip=client_ip(request)):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
