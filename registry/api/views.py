"""One thin view per action: parse, call a selector or a service, render."""

import io

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed, ParseError, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.json_input import JSONParser
from config.schema import problem
from governance.authentication import (
    ApiTokenAuthentication,
    Remembered,
    remembered_tokens,
    token_secret,
    token_uses,
)
from registry import registration, selectors, services
from registry.api.serializers import (
    EvaluationDataSerializer,
    EvaluationUploadSerializer,
    GrantSerializer,
    ModelVersionInputSerializer,
    ModelVersionSerializer,
    ModelVersionUpdateSerializer,
    RegisteredModelDetailSerializer,
    RegisteredModelInputSerializer,
    RegisteredModelSerializer,
    RegisteredModelUpdateSerializer,
)
from registry.errors import InvalidInput, RequestTooLarge
from registry.evaluation import EvaluationSpec, max_bytes
from registry.models import RiskTier, Stage
from registry.permissions import ADD_VERSION, require_view


def paginate(view: APIView, queryset, serializer_class, **context):
    paginator = view.paginator
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    data = serializer_class(page, many=True, context={"request": view.request, **context}).data
    return paginator.get_paginated_response(data)


def choice_param(request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        raise InvalidInput(
            f"Unknown {name} {value!r}.", errors={name: [f"One of: {', '.join(choices)}."]}
        )
    return value


class PaginatedApi(APIView):
    # Named here as on DRF's generic views, so the schema documents the page envelope.
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            self._paginator = self.pagination_class()
        return self._paginator


class ModelListCreateApi(PaginatedApi):
    @extend_schema(
        operation_id="models_list",
        parameters=[
            OpenApiParameter("search", str, description="Substring of the name or description."),
            OpenApiParameter(
                "tag", {"type": "string", "pattern": "^[^:]+:"}, description="A tag as key:value."
            ),
            OpenApiParameter("risk_tier", str, enum=RiskTier.values),
        ],
        responses=RegisteredModelSerializer(many=True),
    )
    def get(self, request):
        tag = request.query_params.get("tag")
        if tag:
            key, sep, value = tag.partition(":")
            if not sep or not key:
                raise InvalidInput(
                    "tag must be key:value.", errors={"tag": ["Expected key:value."]}
                )
            tag = (key, value)
        models = selectors.registered_model_list(
            user=request.user,
            search=request.query_params.get("search") or None,
            tag=tag,
            risk_tier=choice_param(request, "risk_tier", RiskTier.values),
        )
        return paginate(self, models, RegisteredModelSerializer)

    @extend_schema(
        operation_id="models_create",
        request=RegisteredModelInputSerializer,
        responses={
            201: RegisteredModelDetailSerializer,
            409: problem("A model of that name exists."),
        },
    )
    def post(self, request):
        serializer = RegisteredModelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = services.registered_model_create(actor=request.user, **serializer.validated_data)
        return Response(_model_detail(model), status=status.HTTP_201_CREATED)


def _model_detail(model) -> dict:
    return RegisteredModelDetailSerializer(
        model, context={"latest_versions": selectors.latest_versions(model)}
    ).data


class ModelDetailApi(APIView):
    @extend_schema(operation_id="models_retrieve", responses=RegisteredModelDetailSerializer)
    def get(self, request, name: str):
        model = selectors.registered_model_get(user=request.user, name=name)
        return Response(_model_detail(model))

    @extend_schema(
        operation_id="models_update",
        request=RegisteredModelUpdateSerializer,
        responses={
            200: RegisteredModelDetailSerializer,
            409: problem("The risk tier cannot be lowered while a promotion request is open."),
        },
    )
    def patch(self, request, name: str):
        model = selectors.registered_model_get(user=request.user, name=name)
        serializer = RegisteredModelUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        model = services.registered_model_update(
            actor=request.user, model=model, **serializer.validated_data
        )
        return Response(_model_detail(model))


class VersionListCreateApi(PaginatedApi):
    # Registration is the call CI makes most, and DRF's cycle around it (content
    # negotiation, request parsing, template response) costs a tenth of its CPU. A
    # registration sent with a token, as a small UTF-8 JSON body, asking for JSON, is
    # answered with what that cycle would answer (the same status, body and headers)
    # through the same authenticators, permissions, parser, serializers, service,
    # renderer and exception handling, without the rest. Anything else takes the full
    # cycle.
    #
    # A token this worker authenticated lately is not looked up again: the statement
    # that registers requires it unrevoked and every credential unchanged since
    # (governance.authentication.RememberedTokens), and whatever it does not register
    # (a changed credential, a retry, an unknown model, an error) takes the full
    # cycle, which authenticates afresh.
    DIRECT_ACCEPT = frozenset({"", "*/*", "application/json"})
    DIRECT_MAX_BODY = 64 * 1024
    DECIDE_AFRESH = object()

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST":
            response = self.register_directly(request, kwargs["name"])
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def register_directly(self, request, name: str) -> HttpResponse | None:
        """The answer to a plain registration, or None when the full cycle must give
        it (no token, a session, a body it would refuse); nothing is stored then."""
        meta = request.META
        length = meta.get("CONTENT_LENGTH") or "0"
        if (
            "HTTP_AUTHORIZATION" not in meta
            or meta.get("HTTP_ACCEPT", "").strip() not in self.DIRECT_ACCEPT
            or request.content_type != JSONParser.media_type
            or request.content_params.get("charset", "utf-8").lower() != "utf-8"
            or not (length.isdigit() and 0 < int(length) <= self.DIRECT_MAX_BODY)
            or self.versioning_class is not None
        ):
            return None
        try:
            secret = token_secret(request)
        except AuthenticationFailed:
            secret = None  # the authenticators refuse it, as in the full cycle
        remembered = remembered_tokens.get(secret) if secret else None
        if remembered is not None:
            answer = self._register(request, name, secret, remembered)
            if answer is not self.DECIDE_AFRESH:
                return answer
            remembered_tokens.forget(remembered)
        return self._register(request, name, secret, None)

    def _register(self, request, name: str, secret: str | None, remembered: Remembered | None):
        # What APIView.dispatch does, up to the handler.
        self.request = drf_request = self.initialize_request(request, name=name)
        self.headers = self.default_response_headers
        self.format_kwarg = self.get_format_suffix(name=name)
        try:
            if remembered is None:
                # APIView.initial() without content negotiation, which the Accept
                # header has settled, and versioning, which the API does not use.
                self.perform_authentication(drf_request)
            else:
                drf_request.user, drf_request.auth = remembered.user, remembered.token
            self.check_permissions(drf_request)
            self.check_throttles(drf_request)
            if drf_request.auth is None:
                return None  # a session: the full cycle enforces its CSRF check
            require_view(drf_request.user)
            try:
                data = JSONParser().parse(io.BytesIO(request.body))
            except ParseError:
                return None
            serializer = ModelVersionInputSerializer(data=data)
            if not serializer.is_valid():
                return None
            version, created = registration.model_version_register(
                actor=drf_request.user,
                model=name,
                condition=None if remembered is None else remembered.still_valid,
                **serializer.validated_data,
            )
        except Exception as exc:  # noqa: BLE001 - answered as APIView.dispatch answers it
            if remembered is not None:
                return self.DECIDE_AFRESH  # whatever a memory did not register
            return self.finalize_response(drf_request, self.handle_exception(exc))
        if remembered is not None:
            # Authentication records a use; a remembered token skipped it.
            token_uses.record(remembered.token.pk)
        if (
            remembered is None
            and isinstance(drf_request.successful_authenticator, ApiTokenAuthentication)
            and drf_request.user.has_perm(ADD_VERSION)
        ):
            # Owners register by their object permissions, which only a lookup decides.
            remembered_tokens.remember(secret, drf_request.user, drf_request.auth)
        response = HttpResponse(
            JSONRenderer().render(ModelVersionSerializer(version).data),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            content_type=JSONRenderer.media_type,
        )
        return self.finalize_response(drf_request, response)

    @extend_schema(
        operation_id="versions_list",
        parameters=[
            OpenApiParameter("stage", str, enum=Stage.values),
        ],
        responses=ModelVersionSerializer(many=True),
    )
    def get(self, request, name: str):
        model = selectors.registered_model_get(user=request.user, name=name)
        versions = selectors.model_version_list(
            user=request.user, model=model, stage=choice_param(request, "stage", Stage.values)
        )
        return paginate(self, versions, ModelVersionSerializer)

    @extend_schema(
        operation_id="versions_create",
        request=ModelVersionInputSerializer,
        responses={
            201: ModelVersionSerializer,
            200: ModelVersionSerializer,
        },
        description="Registers a version. The same artifact_sha256 again for the same model "
        "answers 200 with the existing version and changes nothing, so retries are safe.",
    )
    def post(self, request, name: str):
        require_view(request.user)
        serializer = ModelVersionInputSerializer(data=request.data)
        if not serializer.is_valid():
            # A missing model answers 404 before the body is judged, as on every route
            # under a model; the service finds the model itself when the body is good.
            selectors.registered_model_get(user=request.user, name=name)
            raise ValidationError(serializer.errors)
        version, created = registration.model_version_register(
            actor=request.user, model=name, **serializer.validated_data
        )
        return Response(
            ModelVersionSerializer(version).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class VersionDetailApi(APIView):
    @extend_schema(operation_id="versions_retrieve", responses=ModelVersionSerializer)
    def get(self, request, name: str, version: int):
        model = selectors.registered_model_get(user=request.user, name=name)
        found = selectors.model_version_get(user=request.user, model=model, version=version)
        return Response(ModelVersionSerializer(found).data)

    @extend_schema(
        operation_id="versions_update",
        request=ModelVersionUpdateSerializer,
        responses=ModelVersionSerializer,
    )
    def patch(self, request, name: str, version: int):
        model = selectors.registered_model_get(user=request.user, name=name)
        found = selectors.model_version_get(user=request.user, model=model, version=version)
        serializer = ModelVersionUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = services.model_version_update(
            actor=request.user, version=found, **serializer.validated_data
        )
        return Response(ModelVersionSerializer(updated).data)


_GRANTS = inline_serializer(
    "ModelGrants",
    {"grants": serializers.ListField(child=serializers.DictField(child=serializers.CharField()))},
)


_NO_PRINCIPAL = problem("No such model, user or group, or a model the caller may not see.")


class ModelGrantsApi(APIView):
    """Object permissions on one model: `change` (edit it and its versions) and
    `review` (approve its promotions; when anyone holds it, only they may)."""

    @extend_schema(operation_id="models_grants_list", responses=_GRANTS)
    def get(self, request, name: str):
        model = selectors.registered_model_get(user=request.user, name=name)
        return Response({"grants": selectors.model_grants(model)})

    @extend_schema(
        operation_id="models_grants_create",
        request=GrantSerializer,
        responses={200: _GRANTS, 404: _NO_PRINCIPAL},
    )
    def post(self, request, name: str):
        return self._change(request, name, revoke=False)

    @extend_schema(
        operation_id="models_grants_delete",
        request=GrantSerializer,
        responses={200: _GRANTS, 404: _NO_PRINCIPAL},
    )
    def delete(self, request, name: str):
        return self._change(request, name, revoke=True)

    def _change(self, request, name: str, *, revoke: bool):
        model = selectors.registered_model_get(user=request.user, name=name)
        serializer = GrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.model_permission_grant(
            actor=request.user, model=model, revoke=revoke, **serializer.validated_data
        )
        return Response({"grants": selectors.model_grants(model)})


class EvaluationUploadApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="evaluation_upload",
        request={"multipart/form-data": EvaluationUploadSerializer},
        responses={201: EvaluationDataSerializer},
        description="Upload a CSV of labels, predictions, optional scores and sensitive "
        "features. Refused whole (nothing stored) when it is empty, binary, too large, "
        "misses a column or holds a non-numeric label, prediction or score.",
    )
    def post(self, request, name: str, version: int):
        # Refuse an oversized body before Django spools it to disk.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > max_bytes() + 64 * 1024:
            raise RequestTooLarge(f"Evaluation files are limited to {max_bytes()} bytes.")
        model = selectors.registered_model_get(user=request.user, name=name)
        found = selectors.model_version_get(user=request.user, model=model, version=version)
        serializer = EvaluationUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        evaluation = services.evaluation_upload(
            actor=request.user,
            version=found,
            upload=data["file"],
            spec=EvaluationSpec(
                label_column=data["label_column"],
                prediction_column=data["prediction_column"],
                score_column=data["score_column"],
                sensitive_features=data["sensitive_features"],
            ),
        )
        return Response(EvaluationDataSerializer(evaluation).data, status=status.HTTP_201_CREATED)
