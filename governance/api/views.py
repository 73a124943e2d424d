from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import selectors, services
from governance.api.serializers import (
    DecisionSerializer,
    PolicySerializer,
    PromotionRequestCreateSerializer,
    PromotionRequestSerializer,
)
from governance.models import Status
from registry.api.views import PaginatedApi, choice_param, paginate
from registry.selectors import registered_model_get


def _detail(request_id: int, user) -> dict:
    return PromotionRequestSerializer(
        selectors.promotion_request_get(user=user, request_id=request_id)
    ).data


class PromotionListCreateApi(PaginatedApi):
    @extend_schema(
        operation_id="promotions_list",
        parameters=[
            OpenApiParameter("status", str, enum=Status.values),
            OpenApiParameter("model", str, description="A model's name."),
            OpenApiParameter("awaiting_me", bool, description="Only requests I may still decide."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=PromotionRequestSerializer(many=True),
    )
    def get(self, request):
        awaiting = choice_param(request, "awaiting_me", ["true", "false"]) == "true"
        requests = selectors.promotion_request_list(
            user=request.user,
            status=choice_param(request, "status", Status.values),
            model=request.query_params.get("model") or None,
            awaiting_me=awaiting,
        )
        return paginate(self, requests, PromotionRequestSerializer)

    @extend_schema(
        operation_id="promotions_create",
        request=PromotionRequestCreateSerializer,
        responses={201: PromotionRequestSerializer},
    )
    def post(self, request):
        serializer = PromotionRequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = registered_model_get(user=request.user, name=data.pop("model"))
        created = services.promotion_request_submit(actor=request.user, model=model, **data)
        return Response(_detail(created.pk, request.user), status=status.HTTP_201_CREATED)


class PromotionDetailApi(APIView):
    @extend_schema(operation_id="promotions_retrieve", responses=PromotionRequestSerializer)
    def get(self, request, request_id: int):
        return Response(_detail(request_id, request.user))


class _ActionApi(APIView):
    service = None
    takes_comment = True

    def post(self, request, request_id: int):
        selectors.promotion_request_get(user=request.user, request_id=request_id)
        kwargs = {}
        if self.takes_comment:
            serializer = DecisionSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            kwargs["comment"] = serializer.validated_data["comment"]
        type(self).service(actor=request.user, request_id=request_id, **kwargs)
        return Response(_detail(request_id, request.user))


@extend_schema(
    operation_id="promotions_approve",
    request=DecisionSerializer,
    responses=PromotionRequestSerializer,
)
class PromotionApproveApi(_ActionApi):
    service = services.promotion_request_approve


@extend_schema(
    operation_id="promotions_reject",
    request=DecisionSerializer,
    responses=PromotionRequestSerializer,
)
class PromotionRejectApi(_ActionApi):
    service = services.promotion_request_reject


@extend_schema(operation_id="promotions_cancel", request=None, responses=PromotionRequestSerializer)
class PromotionCancelApi(_ActionApi):
    service = services.promotion_request_cancel
    takes_comment = False


@extend_schema(
    operation_id="promotions_rerun_checks", request=None, responses=PromotionRequestSerializer
)
class PromotionRerunChecksApi(_ActionApi):
    service = services.promotion_request_rerun_checks
    takes_comment = False


class PolicyListApi(PaginatedApi):
    @extend_schema(operation_id="policies_list", responses=PolicySerializer(many=True))
    def get(self, request):
        return paginate(self, selectors.policy_list(user=request.user), PolicySerializer)
