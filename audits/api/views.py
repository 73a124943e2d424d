from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from audits.exports import (
    CONTENT_TYPES,
    FORMATS,
    KIND_EVENTS,
    ExportStream,
    csv_chunks,
    export_filename,
    jsonl_chunks,
    pdf_chunks,
)
from audits.filters import TEXT_LIMITS, EventFilters
from audits.models import AuditExport
from audits.selectors import (
    chain_head,
    checkpoint_list,
    event_page,
    event_queryset,
    verify_stored_chain,
)
from audits.services import audit_checkpoint_create, checkpoint_document
from audits.signing import signing_key
from registry.errors import Forbidden

VIEW_AUDIT = "audits.view_auditevent"
VIEW_OWNED = "audits.view_owned_auditevent"
MAX_PAGE_SIZE = 1000
# Throttle scopes (rates in REST_FRAMEWORK's DEFAULT_THROTTLE_RATES), counted per user.
THROTTLE_EXPORT = "audit_export"
THROTTLE_VERIFY = "audit_verify"
THROTTLE_CHECKPOINT = "audit_checkpoint"

MOMENT = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]
}


def _text(name: str) -> dict:
    return {"type": "string", "maxLength": TEXT_LIMITS[name]}


def _whole(minimum: int, maximum: int | None = None) -> dict:
    bounds = {"minimum": minimum, **({"maximum": maximum} if maximum is not None else {})}
    return {"type": "integer", **bounds}


FILTER_PARAMETERS = [
    OpenApiParameter(
        "since", MOMENT, description="ISO 8601 date (midnight UTC) or date-time, inclusive."
    ),
    OpenApiParameter(
        "until", MOMENT, description="ISO 8601 date or date-time, exclusive: after `since`."
    ),
    OpenApiParameter("model", _text("model"), description="A model name."),
    OpenApiParameter("actor", _text("actor"), description="A username, or `system`."),
    OpenApiParameter(
        "action", _text("action"), description="An action, or a family as `promotion.*`."
    ),
    OpenApiParameter("object_type", _text("object_type")),
]


def audit_scope(user) -> list[str] | None:
    """The models whose events `user` may read: None for every event (compliance,
    admin), else the models they own (owners). Anyone else is refused."""
    if user.has_perm(VIEW_AUDIT):
        return None
    if user.has_perm(VIEW_OWNED):
        # Which models a user owns is the registry's knowledge; settings name the function.
        resolver = getattr(settings, "AUDIT_MODEL_SCOPE", "")
        return list(import_string(resolver)(user)) if resolver else []
    raise PermissionDenied("Only compliance, admin and model owners read the audit trail.")


def _int_param(request, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise ValidationError({name: [f"Expected a whole number of at least {minimum}{bound}."]})
    return value


EVENT_FIELDS = {
    "seq": serializers.IntegerField(),
    "occurred_at": serializers.CharField(),
    "actor": serializers.CharField(),
    "actor_kind": serializers.CharField(),
    "action": serializers.CharField(),
    "object_type": serializers.CharField(),
    "object_id": serializers.CharField(),
    "object_repr": serializers.CharField(),
    "model": serializers.CharField(allow_null=True),
    "data": serializers.DictField(),
    "request_id": serializers.CharField(allow_null=True),
    "ip": serializers.CharField(allow_null=True),
    "prev_hash": serializers.CharField(),
    "hash": serializers.CharField(),
}


class AuditEventListApi(APIView):
    """Events, oldest first, one keyset page at a time: `next` reads on after the page's
    last seq (`after=`), `previous` back from its first (`before=`)."""

    @extend_schema(
        operation_id="audit_events_list",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter("after", _whole(0), description="Only events after this seq."),
            OpenApiParameter(
                "before",
                _whole(1),
                description="Only events before this seq (not with `after`).",
            ),
            OpenApiParameter(
                "page_size", _whole(1, MAX_PAGE_SIZE), description=f"1 to {MAX_PAGE_SIZE}."
            ),
        ],
        responses=inline_serializer(
            "AuditEventPage",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": inline_serializer("AuditEvent", EVENT_FIELDS, many=True),
            },
        ),
    )
    def get(self, request):
        scope = audit_scope(request.user)
        filters = EventFilters.from_query(request.query_params)
        after = _int_param(request, "after", minimum=0)
        before = _int_param(request, "before", minimum=1)
        if after is not None and before is not None:
            raise ValidationError({"before": ["Give after or before, not both."]})
        size = _int_param(request, "page_size", minimum=1, maximum=MAX_PAGE_SIZE)
        page = event_page(
            event_queryset(filters=filters, models=scope),
            after=after,
            before=before,
            size=size or api_settings.PAGE_SIZE,
        )
        url = remove_query_param(
            remove_query_param(request.build_absolute_uri(), "after"), "before"
        )
        events = page.events
        # An empty page still links onward from where its cursor stood.
        last = events[-1]["seq"] if events else (before - 1 if before else after or 0)
        first = events[0]["seq"] if events else (before if before else (after or 0) + 1)
        return Response(
            {
                "count": page.count,
                "next": replace_query_param(url, "after", last) if page.has_next else None,
                "previous": replace_query_param(url, "before", first)
                if page.has_previous
                else None,
                "results": events,
            }
        )


class AuditExportApi(APIView):
    """A streamed download of the events matching the filters, up to the chain head as
    it stood when the export began. The response's X-Audit-Export-Id and Link headers
    name the signed manifest, served once the last byte has been sent."""

    throttle_scope = THROTTLE_EXPORT

    @extend_schema(
        operation_id="audit_export",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter("format", str, enum=list(FORMATS), description="Default jsonl."),
        ],
        responses={
            (200, media_type.partition(";")[0]): OpenApiTypes.BINARY
            for media_type in CONTENT_TYPES.values()
        },
    )
    def get(self, request):
        scope = audit_scope(request.user)
        filters = EventFilters.from_query(request.query_params)
        export_format = request.query_params.get("format") or "jsonl"
        if export_format not in FORMATS:
            raise ValidationError({"format": [f"One of: {', '.join(FORMATS)}."]})
        head = chain_head()
        queryset = event_queryset(filters=filters, models=scope, upto_seq=head[0])
        asked = filters.as_dict()
        stream = ExportStream(
            actor=request.user, kind=KIND_EVENTS, format=export_format, filters=asked, head=head
        )
        if scope is not None:
            stream.extra["scope"] = "models owned by the exporter"
        if export_format == "jsonl":
            chunks = jsonl_chunks(queryset)
        elif export_format == "csv":
            chunks = csv_chunks(queryset)
        else:
            chunks = self._pdf(request, queryset, stream, asked, head)
        filename = export_filename(KIND_EVENTS, asked, export_format, stream.started_at)
        return stream.response(chunks, filename=filename)

    def _pdf(self, request, queryset, stream, filters, head):
        from audits.report_pdf import build_report

        limit = settings.AUDIT_PDF_MAX_EVENTS
        matched = queryset.count()
        if matched > limit:
            raise ValidationError(
                {
                    "format": [
                        f"A PDF report holds at most {limit} events and these filters match "
                        f"{matched}: narrow them (model, since, until, action) or export "
                        "jsonl or csv."
                    ]
                }
            )

        def build(events, events_sha256):
            return build_report(
                events,
                filters=filters,
                head=head,
                events_sha256=events_sha256,
                exported_by=request.user.get_username(),
                generated_at=stream.started_at,
            )

        def on_digest(digest):
            stream.extra["events_sha256"] = digest

        return pdf_chunks(queryset, build=build, on_digest=on_digest)


class AuditExportManifestApi(APIView):
    """The signed manifest of a finished export: for its taker, compliance and admin."""

    @extend_schema(operation_id="audit_export_manifest", responses=OpenApiTypes.OBJECT)
    def get(self, request, export_id):
        export = AuditExport.objects.filter(pk=export_id).first()
        mine = export is not None and export.actor_user_id == request.user.pk
        if export is None or not (mine or request.user.has_perm(VIEW_AUDIT)):
            raise NotFound("No finished export with this id.")
        response = Response(dict(sorted(export.manifest.items())))
        response["Content-Disposition"] = f'inline; filename="audit-export-{export.pk}.json"'
        return response


class AuditPublicKeyApi(APIView):
    """The Ed25519 public key that checks manifests and checkpoints (PEM). Open to all:
    an auditor fetches it once and checks signatures offline from then on."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="audit_public_key",
        responses={(200, "application/x-pem-file"): OpenApiTypes.STR},
    )
    def get(self, request):
        key = signing_key()
        response = HttpResponse(key.public_pem, content_type="application/x-pem-file")
        response["X-Audit-Key-Id"] = key.key_id
        return response


CHECKPOINT_FIELDS = {
    "kind": serializers.CharField(),
    "seq": serializers.IntegerField(),
    "hash": serializers.CharField(),
    "created_at": serializers.CharField(),
    "key_id": serializers.CharField(),
    "public_key": serializers.CharField(),
    "signature": serializers.CharField(),
}


CHECKPOINT = inline_serializer("AuditCheckpoint", CHECKPOINT_FIELDS)


class AuditCheckpointListApi(APIView):
    """Signed checkpoints of the chain head, newest first; POST takes one now."""

    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    throttle_scope = THROTTLE_CHECKPOINT

    def get_throttles(self):
        # Reading checkpoints is cheap; taking one signs and appends to the chain.
        return super().get_throttles() if self.request.method == "POST" else []

    def _require(self, request):
        if not request.user.has_perm(VIEW_AUDIT):
            raise PermissionDenied("Only compliance and admin read or take checkpoints.")

    @extend_schema(
        operation_id="audit_checkpoints_list",
        responses=type(CHECKPOINT)(many=True),
    )
    def get(self, request):
        self._require(request)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            checkpoint_list().order_by("-seq", "-id"), request, view=self
        )
        return paginator.get_paginated_response([checkpoint_document(c) for c in page])

    @extend_schema(
        operation_id="audit_checkpoints_create",
        request=None,
        responses={201: CHECKPOINT},
    )
    def post(self, request):
        self._require(request)
        checkpoint = audit_checkpoint_create(actor=request.user)
        return Response(checkpoint_document(checkpoint), status=status.HTTP_201_CREATED)


class AuditVerifyApi(APIView):
    """Recompute the whole chain from the stored events and compare it with its head."""

    throttle_scope = THROTTLE_VERIFY

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
