from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from audits.api.views import THROTTLE_EXPORT
from audits.exports import ExportStream, export_filename
from audits.selectors import chain_head
from governance.access_review import KIND, access_review_chunks
from governance.errors import Forbidden

REVIEW_ACCESS = "audits.view_auditevent"


class AccessReviewApi(APIView):
    """Who holds which role and which object permissions, as CSV; audited as an export
    (audit.exported, kind access_review) with a signed manifest like any other, and
    throttled with them."""

    throttle_scope = THROTTLE_EXPORT

    @extend_schema(
        operation_id="access_review",
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    def get(self, request):
        if not request.user.has_perm(REVIEW_ACCESS):
            raise Forbidden("Only compliance and admin review access.")
        stream = ExportStream(
            actor=request.user, kind=KIND, format="csv", filters={}, head=chain_head()
        )
        filename = export_filename(KIND, {}, "csv", stream.started_at)
        return stream.response(access_review_chunks(), filename=filename)
