from django import forms
from django.contrib import admin, messages

from governance import admin_auth
from governance.models import ApiToken, Policy, PromotionRequest
from governance.services import token_create, token_revoke
from governance.services.policies import EDITABLE, policy_create, policy_update, validate_policy
from registry.errors import ServiceError


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    fields = ["user", "name"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "name", "prefix", "created_at", "revoked_at"] if obj else []

    def get_fields(self, request, obj=None):
        return ["user", "name", "prefix", "created_at", "revoked_at"] if obj else self.fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        token, secret = token_create(actor=request.user, user=obj.user, name=obj.name)
        obj.pk = token.pk
        messages.warning(request, f"The new token, shown only now: {secret}")

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(actor=request.user, token=token)
        messages.success(request, "Revoked.")


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = list(EDITABLE)

    def clean(self):
        cleaned = super().clean()
        fields = {key: cleaned.get(key) for key in EDITABLE}
        fields["risk_tier"] = fields["risk_tier"] or ""
        for key, errors in validate_policy(fields).items():
            field = key.split(".")[0]
            text = [f"{key}: {m}" if key != field else m for m in errors]
            if field in self.fields:
                self.add_error(field, text)
            else:
                self.add_error(None, text)
        return cleaned


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    """Edits go through the policy services: validated, audited with before and after.
    Requests already made keep the snapshot they were created under."""

    form = PolicyForm
    list_display = [
        "name",
        "target_stage",
        "risk_tier",
        "required_approvals",
        "approver_role",
        "updated_at",
    ]
    list_filter = ["target_stage", "risk_tier"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        fields = {key: form.cleaned_data[key] for key in EDITABLE}
        fields["risk_tier"] = fields["risk_tier"] or ""
        try:
            if change:
                policy_update(actor=request.user, policy=Policy.objects.get(pk=obj.pk), **fields)
            else:
                obj.pk = policy_create(actor=request.user, **fields).pk
        except ServiceError as exc:
            messages.error(request, exc.detail)


@admin.register(PromotionRequest)
class PromotionRequestAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "model",
        "version",
        "target_stage",
        "status",
        "requested_by",
        "created_at",
    ]
    list_filter = ["status", "target_stage", "model__risk_tier"]
    search_fields = ["model__name"]
    list_select_related = ["model", "version", "requested_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Django's user and group screens, replaced by audited ones.
admin_auth.register()
