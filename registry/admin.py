"""The registry in the admin. Saves go through the services, so the admin writes the
same audit events and obeys the same permissions as the API."""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from audits.models import AuditEvent
from config.json_input import JSONFormField
from registry import services
from registry.cards import card_sections, validate_card
from registry.errors import Forbidden, ServiceError
from registry.models import ModelVersion, RegisteredModel
from registry.permissions import CHANGE_MODEL, has_model_perm

STAGE_COLOURS = {
    "none": "#6b7280",
    "staging": "#b45309",
    "production": "#15803d",
    "archived": "#374151",
}


def stage_badge(stage: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;border-radius:8px;padding:1px 8px;'
        'font-size:11px">{}</span>',
        STAGE_COLOURS.get(stage, "#6b7280"),
        stage,
    )


def render_card(card: dict) -> str:
    sections = card_sections(card or {})
    if not sections:
        return "No model card yet."
    rows = []
    for title, kind, value in sections:
        body = (
            format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((v,) for v in value)))
            if kind == "list"
            else format_html('<p style="white-space:pre-wrap">{}</p>', value)
        )
        rows.append((title, body))
    return format_html(
        '<dl class="model-card">{}</dl>',
        format_html_join("", "<dt><strong>{}</strong></dt><dd>{}</dd>", rows),
    )


def stage_history(model: RegisteredModel, *, limit: int = 100) -> list[dict]:
    """The model's stage moves, newest first, as the audit log recorded them: the log
    is the history, so this page cannot disagree with an export."""
    events = AuditEvent.objects.filter(
        action="model_version.stage_changed", model=model.name
    ).order_by("-seq")[:limit]
    return [
        {
            "event": event,
            "version": event.data.get("version"),
            "from": stage_badge(str(event.data.get("from", ""))),
            "to": stage_badge(str(event.data.get("to", ""))),
            "request": event.data.get("promotion_request"),
            "reason": event.data.get("reason", ""),
        }
        for event in events
    ]


class CardFormMixin:
    def clean_card(self):
        clean, errors = validate_card(self.cleaned_data.get("card") or {})
        if errors:
            raise forms.ValidationError(
                [f"{key}: {'; '.join(msgs)}" for key, msgs in errors.items()]
            )
        return clean

    def clean_tags(self):
        tags = self.cleaned_data.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise forms.ValidationError("Tags are an object of strings.")
        return tags


class RegisteredModelForm(CardFormMixin, forms.ModelForm):
    class Meta:
        model = RegisteredModel
        fields = ["name", "description", "risk_tier", "card", "tags"]
        field_classes = {"card": JSONFormField, "tags": JSONFormField}


class ModelVersionForm(CardFormMixin, forms.ModelForm):
    class Meta:
        model = ModelVersion
        fields = ["description", "card", "tags"]
        field_classes = {"card": JSONFormField, "tags": JSONFormField}


def _call(request, service, **kwargs):
    try:
        return service(actor=request.user, **kwargs)
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from exc


class VersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ["version", "badge", "framework", "digest", "created_by", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-version"]

    @admin.display(description="stage")
    def badge(self, obj):
        return stage_badge(obj.stage)

    @admin.display(description="artifact SHA-256")
    def digest(self, obj):
        # The first 12 hex digits tell versions apart; the full digest is one hover (or
        # one click, on the version's page) away, and the row stays on screen.
        return format_html(
            '<code title="{}">{}…</code>', obj.artifact_sha256, obj.artifact_sha256[:12]
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    # Sections other apps add below the model page, as (title, section(request, model)
    # returning HTML or None): governance lists the open promotion requests this way,
    # so the registry shows them without importing governance.
    page_sections: list[tuple[str, Callable[[HttpRequest, RegisteredModel], str | None]]] = []
    stage_history_limit = 100

    form = RegisteredModelForm
    list_display = ["name", "risk_tier", "last_version", "created_by", "updated_at"]
    list_filter = ["risk_tier", "created_at"]
    search_fields = ["name", "description"]
    list_select_related = ["created_by"]
    readonly_fields = ["model_card", "created_by", "created_at", "updated_at"]
    inlines = [VersionInline]

    @admin.display(description="Model card")
    def model_card(self, obj):
        return render_card(obj.card)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        model = self.get_object(request, unquote(object_id))
        extra = {}
        if model is not None:
            extra["stage_history"] = stage_history(model, limit=self.stage_history_limit)
            extra["stage_history_limit"] = self.stage_history_limit
            extra["page_sections"] = [
                (title, html)
                for title, section in self.page_sections
                if (html := section(request, model)) is not None
            ]
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return super().has_view_permission(request)
        return has_model_perm(request.user, CHANGE_MODEL, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in services.MODEL_EDITABLE}
        try:
            if change:
                _call(request, services.registered_model_update, model=obj, **data)
            else:
                created = _call(
                    request,
                    services.registered_model_create,
                    name=form.cleaned_data["name"],
                    **data,
                )
                obj.pk = created.pk
        except ServiceError as exc:
            messages.error(request, exc.detail)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    form = ModelVersionForm
    list_display = ["__str__", "badge", "framework", "created_by", "created_at"]
    list_filter = ["stage", "framework", "model__risk_tier"]
    search_fields = ["model__name", "artifact_sha256", "description"]
    list_select_related = ["model", "created_by"]
    readonly_fields = [
        "model",
        "version",
        "stage",
        "artifact_uri",
        "artifact_sha256",
        "artifact_size",
        "framework",
        "metrics",
        "params",
        "lineage",
        "model_card",
        "created_by",
        "created_at",
        "stage_changed_at",
    ]

    @admin.display(description="stage", ordering="stage")
    def badge(self, obj):
        return stage_badge(obj.stage)

    @admin.display(description="Model card")
    def model_card(self, obj):
        return render_card(obj.card)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return super().has_view_permission(request)
        return has_model_perm(request.user, CHANGE_MODEL, obj.model)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in services.VERSION_EDITABLE}
        fresh = ModelVersion.objects.select_related("model").get(pk=obj.pk)
        try:
            _call(request, services.model_version_update, version=fresh, **data)
        except ServiceError as exc:
            messages.error(request, exc.detail)
