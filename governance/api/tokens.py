"""API tokens: one's own, listed, created and revoked; an admin's for ci accounts."""

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import problem
from governance import selectors, services
from governance.models import ApiToken
from registry.api.serializers import CharField
from registry.api.views import PaginatedApi, paginate
from registry.errors import NotFound


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "user",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret, shown only here.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_in_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=settings.API_TOKEN_MAX_LIFETIME_DAYS,
        help_text=f"Days the token lives: {settings.API_TOKEN_LIFETIME_DAYS} when left "
        f"out, at most {settings.API_TOKEN_MAX_LIFETIME_DAYS}.",
    )
    user = CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Whose token: yourself when left out. Admins may name a ci account.",
    )


class TokenListCreateApi(PaginatedApi):
    @extend_schema(
        operation_id="tokens_list",
        parameters=[
            OpenApiParameter("user", str, description="Another account's (admins only)."),
        ],
        responses=ApiTokenSerializer(many=True),
    )
    def get(self, request):
        tokens = selectors.api_token_list(
            user=request.user, username=request.query_params.get("user") or None
        )
        return paginate(self, tokens, ApiTokenSerializer)

    @extend_schema(
        operation_id="tokens_create",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, 404: problem("No account of that name.")},
        description="Creates a token for yourself, or, as an admin, for a ci account. "
        "The secret is in this answer only. A token made with a token expires no later "
        "than that token.",
    )
    def post(self, request):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        if data["user"] and data["user"] != user.get_username():
            user = get_user_model().objects.filter(username=data["user"]).first()
            if user is None:
                raise NotFound(
                    f"No account named {data['user']!r}.", errors={"user": ["No such account."]}
                )
        token, secret = services.token_create(
            actor=request.user,
            user=user,
            name=data["name"],
            expires_in_days=data["expires_in_days"],
            made_with=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        answer = Response(
            {**ApiTokenSerializer(token).data, "token": secret}, status=status.HTTP_201_CREATED
        )
        answer["Cache-Control"] = "no-store"
        return answer


class TokenDetailApi(APIView):
    @extend_schema(operation_id="tokens_retrieve", responses=ApiTokenSerializer)
    def get(self, request, token_id: int):
        return Response(
            ApiTokenSerializer(selectors.api_token_get(user=request.user, token_id=token_id)).data
        )


class TokenRevokeApi(APIView):
    @extend_schema(operation_id="tokens_revoke", request=None, responses=ApiTokenSerializer)
    def post(self, request, token_id: int):
        token = selectors.api_token_get(user=request.user, token_id=token_id)
        token = services.token_revoke(actor=request.user, token=token)
        return Response(ApiTokenSerializer(token).data)
