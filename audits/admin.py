import json

from django.contrib import admin
from django.utils.html import format_html

from audits.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the log only grows, by record()."""

    list_display = ["seq", "occurred_at", "actor", "actor_kind", "action", "object_repr", "model"]
    # Each filter lists its distinct values in one query, however long the log.
    list_filter = ["action", "actor", "model", "actor_kind", "object_type", "occurred_at"]
    search_fields = ["actor", "model", "object_repr", "object_id", "request_id"]
    date_hierarchy = "occurred_at"
    ordering = ["-seq"]
    show_full_result_count = False
    readonly_fields = [
        "seq",
        "occurred_at",
        "actor",
        "actor_kind",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "model",
        "pretty_data",
        "request_id",
        "ip",
        "prev_hash",
        "hash",
    ]
    fields = readonly_fields

    @admin.display(description="data")
    def pretty_data(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, ensure_ascii=False))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
