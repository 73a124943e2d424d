from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audits.selectors import verify_stored_chain
from registry.errors import Forbidden

VIEW_AUDIT = "audits.view_auditevent"


class AuditVerifyApi(APIView):
    """Recompute the whole chain from the stored events and compare it with its head."""

    @extend_schema(
        operation_id="audit_verify",
        responses=inline_serializer(
            "AuditVerification",
            {
                "ok": serializers.BooleanField(),
                "events_checked": serializers.IntegerField(),
                "head_seq": serializers.IntegerField(),
                "head_hash": serializers.CharField(),
                "first_bad_seq": serializers.IntegerField(allow_null=True),
                "reason": serializers.CharField(),
            },
        ),
    )
    def get(self, request):
        if not request.user.has_perm(VIEW_AUDIT):
            raise Forbidden("Only compliance and admin read the audit trail.")
        return Response(verify_stored_chain().as_dict())
