"""Django's own user and group screens, audited. They change users and roles without
going through a service of ours, so what the admin logs is also written to the chain
(admin.action), in the admin view's transaction. And django-axes' screens of sign-in
attempts, which only superusers may change: deleting an attempt unlocks it."""

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction

from audits.services import record


class AuditedAdminMixin:
    def log_addition(self, request, obj, message):
        self._audit(request, obj, "added", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "changed", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "deleted", "")
        return super().log_deletions(request, queryset)

    def _audit(self, request, obj, operation: str, message) -> None:
        meta = obj._meta
        data = {
            "operation": operation,
            "model": meta.label_lower,
            "object": str(obj),
            "change": message,
            **self.audit_state(obj),
        }
        with transaction.atomic():
            record(
                actor=request.user,
                action="admin.action",
                obj=obj,
                object_type=meta.model_name,
                object_repr=str(obj),
                data=data,
            )

    def audit_state(self, obj) -> dict:
        """What the change log's message leaves out: the state the object is left in."""
        return {}


class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    def audit_state(self, obj) -> dict:
        if obj.pk is None:
            return {}
        return {
            "groups": sorted(obj.groups.values_list("name", flat=True)),
            "is_active": obj.is_active,
            "is_staff": obj.is_staff,
            "is_superuser": obj.is_superuser,
        }


class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    def audit_state(self, obj) -> dict:
        if obj.pk is None:
            return {}
        return {
            "permissions": sorted(
                f"{app}.{codename}"
                for app, codename in obj.permissions.values_list(
                    "content_type__app_label", "codename"
                )
            )
        }


class SuperuserChangesMixin:
    """Read-only for everyone but superusers, whatever permissions a group is given."""

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}


class SignInAttemptAdmin(SuperuserChangesMixin, AuditedAdminMixin, AccessAttemptAdmin):
    pass


class SignInFailureAdmin(SuperuserChangesMixin, AuditedAdminMixin, AccessFailureLogAdmin):
    pass


def register(site: admin.AdminSite = admin.site) -> None:
    User = get_user_model()
    for model, model_admin in (
        (User, AuditedUserAdmin),
        (Group, AuditedGroupAdmin),
        (AccessAttempt, SignInAttemptAdmin),
        (AccessFailureLog, SignInFailureAdmin),
    ):
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)
