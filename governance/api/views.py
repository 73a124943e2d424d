from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import problem
from governance import selectors, services
from governance.api.serializers import (
    DecisionSerializer,
    PolicySerializer,
    PromotionRequestCreateSerializer,
    PromotionRequestSerializer,
    RejectionSerializer,
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
        description="Requests a promotion; its checks start at once. Bringing an archived "
        "version back to production needs a justification.",
        request=PromotionRequestCreateSerializer,
        responses={
            201: PromotionRequestSerializer,
            404: problem("No such model or version, or one the caller may not see."),
            409: problem(
                "The version is already in that stage or cannot move to it, a request for "
                "it is open, or no policy covers it."
            ),
        },
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
    decision_serializer = DecisionSerializer

    def post(self, request, request_id: int):
        selectors.promotion_request_get(user=request.user, request_id=request_id)
        kwargs = {}
        if self.decision_serializer is not None:
            serializer = self.decision_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            kwargs["comment"] = serializer.validated_data["comment"]
        type(self).service(actor=request.user, request_id=request_id, **kwargs)
        return Response(_detail(request_id, request.user))


def _action_schema(operation_id: str, *, request, state: str):
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            request=request,
            responses={200: PromotionRequestSerializer, 409: problem(state)},
        )
    )


@_action_schema(
    "promotions_approve",
    request=DecisionSerializer,
    state="The request is not awaiting approval, or the caller already approved it.",
)
class PromotionApproveApi(_ActionApi):
    service = services.promotion_request_approve


@_action_schema(
    "promotions_reject",
    request=RejectionSerializer,
    state="The request is not awaiting approval.",
)
class PromotionRejectApi(_ActionApi):
    service = services.promotion_request_reject
    decision_serializer = RejectionSerializer


@_action_schema("promotions_cancel", request=None, state="The request is no longer open.")
class PromotionCancelApi(_ActionApi):
    service = services.promotion_request_cancel
    decision_serializer = None


@_action_schema(
    "promotions_rerun_checks", request=None, state="The request's checks have not failed."
)
class PromotionRerunChecksApi(_ActionApi):
    service = services.promotion_request_rerun_checks
    decision_serializer = None


class PolicyListApi(PaginatedApi):
    @extend_schema(operation_id="policies_list", responses=PolicySerializer(many=True))
    def get(self, request):
        return paginate(self, selectors.policy_list(user=request.user), PolicySerializer)
