from django.urls import path

from audits.api import views

urlpatterns = [path("audit/verify/", views.AuditVerifyApi.as_view(), name="audit-verify")]
