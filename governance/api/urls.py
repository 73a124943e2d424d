from django.urls import path

from governance.api import views
from governance.api.access_review import AccessReviewApi
from governance.api.tokens import TokenDetailApi, TokenListCreateApi, TokenRevokeApi

urlpatterns = [
    path("promotions/", views.PromotionListCreateApi.as_view(), name="promotion-list"),
    path(
        "promotions/<int:request_id>/", views.PromotionDetailApi.as_view(), name="promotion-detail"
    ),
    path(
        "promotions/<int:request_id>/approve/",
        views.PromotionApproveApi.as_view(),
        name="promotion-approve",
    ),
    path(
        "promotions/<int:request_id>/reject/",
        views.PromotionRejectApi.as_view(),
        name="promotion-reject",
    ),
    path(
        "promotions/<int:request_id>/cancel/",
        views.PromotionCancelApi.as_view(),
        name="promotion-cancel",
    ),
    path(
        "promotions/<int:request_id>/rerun-checks/",
        views.PromotionRerunChecksApi.as_view(),
        name="promotion-rerun-checks",
    ),
    path("policies/", views.PolicyListApi.as_view(), name="policy-list"),
    path("access-review/", AccessReviewApi.as_view(), name="access-review"),
    path("tokens/", TokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", TokenDetailApi.as_view(), name="token-detail"),
    path("tokens/<int:token_id>/revoke/", TokenRevokeApi.as_view(), name="token-revoke"),
]
