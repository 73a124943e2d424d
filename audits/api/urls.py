from django.urls import path

from audits.api import views

urlpatterns = [
    path("audit/events/", views.AuditEventListApi.as_view(), name="audit-events"),
    path("audit/export/", views.AuditExportApi.as_view(), name="audit-export"),
    path(
        "audit/exports/<uuid:export_id>/manifest/",
        views.AuditExportManifestApi.as_view(),
        name="audit-export-manifest",
    ),
    path("audit/public-key/", views.AuditPublicKeyApi.as_view(), name="audit-public-key"),
    path("audit/checkpoints/", views.AuditCheckpointListApi.as_view(), name="audit-checkpoints"),
    path("audit/verify/", views.AuditVerifyApi.as_view(), name="audit-verify"),
]
