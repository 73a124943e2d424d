import hashlib

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from governance.models import ApiToken


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer TOKEN` or `Authorization: Token TOKEN`."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from exc
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=hash_token(secret), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="modelgov"'
