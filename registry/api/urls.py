from django.urls import path

from registry.api import views

urlpatterns = [
    path("models/", views.ModelListCreateApi.as_view(), name="model-list"),
    path("models/<str:name>/", views.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<str:name>/grants/", views.ModelGrantsApi.as_view(), name="model-grants"),
    path("models/<str:name>/versions/", views.VersionListCreateApi.as_view(), name="version-list"),
    path(
        "models/<str:name>/versions/<int:version>/",
        views.VersionDetailApi.as_view(),
        name="version-detail",
    ),
    path(
        "models/<str:name>/versions/<int:version>/evaluation/",
        views.EvaluationUploadApi.as_view(),
        name="evaluation-upload",
    ),
]
