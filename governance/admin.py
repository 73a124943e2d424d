from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from config.json_input import JSONFormField
from governance import admin_auth, review
from governance.api.serializers import TEXT_MAX
from governance.badges import check_badge, status_badge
from governance.models import OPEN_STATUSES, ApiToken, Policy, PromotionRequest, Status
from governance.roles import is_admin
from governance.selectors import awaiting_decision_by, token_owner_choices
from governance.services import (
    promotion_request_approve,
    promotion_request_reject,
    token_create,
    token_revoke,
)
from governance.services.access import token_create_check, token_lifetime
from governance.services.policies import EDITABLE, policy_create, policy_update, validate_policy
from governance.services.promotions import valid_approvals
from registry.admin import RegisteredModelAdmin
from registry.errors import ServiceError


class ApiTokenAddForm(forms.ModelForm):
    """The admin's add form: the user is oneself, or for an admin a ci account."""

    actor = None  # the user adding, set by ApiTokenAdmin.get_form
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        label="Expires in (days)",
        help_text=f"{settings.API_TOKEN_LIFETIME_DAYS} when left empty; "
        f"at most {settings.API_TOKEN_MAX_LIFETIME_DAYS}.",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name"]

    def clean(self):
        cleaned = super().clean()
        user = cleaned.get("user") if "user" in self.fields else self.actor
        if user is not None:
            try:
                token_create_check(actor=self.actor, user=user)
            except ServiceError as exc:
                self.add_error("user" if "user" in self.fields else None, exc.detail)
        try:
            token_lifetime(cleaned.get("expires_in_days"))
        except ServiceError as exc:
            self.add_error("expires_in_days", exc.detail)
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every staff member manages their own tokens here; admins see all of them, and
    add tokens for themselves or for ci accounts. token_create decides who may have a
    token made by whom; the form only offers what it allows."""

    form = ApiTokenAddForm
    list_display = [
        "prefix",
        "user",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    actions = ["revoke"]
    shown = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]

    @staticmethod
    def _is_admin(request) -> bool:
        # Asked several times per page; the answer is kept for the request.
        if not hasattr(request, "_tokens_admin"):
            request._tokens_admin = is_admin(request.user)
        return request._tokens_admin

    def _may_manage(self, request, obj=None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return obj is None or obj.user_id == user.pk or self._is_admin(request)

    def has_module_permission(self, request):
        return self._may_manage(request)

    def has_view_permission(self, request, obj=None):
        return self._may_manage(request, obj)

    def has_add_permission(self, request):
        return self._may_manage(request)

    def has_change_permission(self, request, obj=None):
        # Nothing is edited; the revoke action needs it.
        return self._may_manage(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        tokens = super().get_queryset(request)
        return tokens if self._is_admin(request) else tokens.filter(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        return self.shown if obj else []

    def get_fields(self, request, obj=None):
        if obj:
            return self.shown
        if self._is_admin(request):
            return ["user", "name", "expires_in_days"]
        return ["name", "expires_in_days"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_changeform_initial_data(self, request):
        return {"user": request.user.pk}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = token_owner_choices(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            token, secret = token_create(
                actor=request.user,
                user=form.cleaned_data.get("user") or request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data.get("expires_in_days"),
            )
        except ServiceError as exc:
            raise PermissionDenied(exc.detail) from exc
        # What the admin's change log and redirect read from the object.
        obj.pk, obj.user, obj.prefix = token.pk, token.user, token.prefix
        expires = f"{token.expires_at:%Y-%m-%d %H:%M} UTC"
        messages.warning(request, f"The new token, shown only now: {secret} (expires {expires})")

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(actor=request.user, token=token)
        messages.success(request, "Revoked.")


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = list(EDITABLE)
        field_classes = {"checks": JSONFormField}

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


class ReviewScopeFilter(admin.SimpleListFilter):
    """The requests awaiting my review (those I may still decide), or all of them.

    Reviewers land on their own queue; everyone else on all requests. The choice is
    explicit in the URL either way, so a link to the queue means the same to all."""

    title = "review"
    parameter_name = "review"
    MINE, ALL = "mine", "all"

    def __init__(self, request, params, model, model_admin):
        self.default = self.MINE if review.reviews_by_default(request.user) else self.ALL
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(self.MINE, "Awaiting my review"), (self.ALL, "All requests")]

    def value(self):
        chosen = super().value()
        return chosen if chosen in (self.MINE, self.ALL) else self.default

    def choices(self, changelist):
        current = self.value()
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == self.MINE:
            return awaiting_decision_by(queryset, request.user)
        return queryset


@admin.register(PromotionRequest)
class PromotionRequestAdmin(admin.ModelAdmin):
    """The review queue (the changelist) and the decision page (the change view).

    Nothing here writes a row: Approve and Reject call the governance services, which
    enforce separation of duties for the admin exactly as for the API."""

    list_display = [
        "number",
        "model_name",
        "version_number",
        "target",
        "risk_tier",
        "requester",
        "age",
        "status_badge",
        "checks",
        "approvals",
    ]
    list_display_links = ["number", "model_name"]
    list_filter = [
        ReviewScopeFilter,
        "status",
        ("model", admin.RelatedOnlyFieldListFilter),
        "target_stage",
        ("model__risk_tier", admin.ChoicesFieldListFilter),
    ]
    search_fields = ["model__name"]
    search_help_text = "Search by model name."
    list_per_page = 50
    ordering = ["-created_at"]
    decision_template = "admin/governance/promotionrequest/decision.html"

    class Media:
        css = {"all": ["governance/review.css"]}

    def get_queryset(self, request):
        return review.queue_queryset(super().get_queryset(request))

    @admin.display(description="#", ordering="id")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="model", ordering="model__name")
    def model_name(self, obj):
        return obj.model.name

    @admin.display(description="version", ordering="version__version")
    def version_number(self, obj):
        return f"v{obj.version.version}"

    @admin.display(description="target stage", ordering="target_stage")
    def target(self, obj):
        return obj.target_stage

    @admin.display(description="risk tier", ordering="model__risk_tier")
    def risk_tier(self, obj):
        return obj.model.risk_tier

    @admin.display(description="requester", ordering="requested_by__username")
    def requester(self, obj):
        return obj.requested_by.get_username()

    @admin.display(description="age", ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at, depth=1)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status)

    @admin.display(description="checks")
    def checks(self, obj):
        runs = obj.current_checks
        if not runs:
            return "—"
        return format_html(
            '<span class="mg-checks">{}</span>',
            format_html_join("", "{}", ((check_badge(r.name, r.status, r.summary),) for r in runs)),
        )

    @admin.display(description="approvals")
    def approvals(self, obj):
        return f"{len(obj.counted_approvals)} of {obj.required_approvals}"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        decide = path(
            "<int:object_id>/decide/",
            self.admin_site.admin_view(self.decide_view),
            name="governance_promotionrequest_decide",
        )
        return [decide, *super().get_urls()]

    def get_list_display(self, request):
        # Every request in my queue awaits approval: the status column would say so on
        # every row, and the room is better spent on the checks.
        if _my_queue(request):
            return [c for c in self.list_display if c != "status_badge"]
        return self.list_display

    def changelist_view(self, request, extra_context=None):
        title = "Promotions awaiting my review" if _my_queue(request) else "Promotion requests"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The decision page: the evidence, read-only; decisions post to decide_view."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        found = review.request_for_review(int(object_id)) if object_id.isdigit() else None
        if found is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, found):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Promotion #{found.pk}: {found.model.name} v{found.version.version} "
            f"→ {found.target_stage}",
            "subtitle": None,
            "original": found,
            "queue_url": _queue_url(request),
            "decide_url": reverse("admin:governance_promotionrequest_decide", args=[found.pk]),
            **review.decision_evidence(found, request.user),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.decision_template, context)

    def decide_view(self, request, object_id):
        """Approve or reject through the services; whatever they refuse is shown as a
        message on the decision page, and nothing changes."""
        back = reverse("admin:governance_promotionrequest_change", args=[object_id])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        if not self.has_view_permission(request):
            raise PermissionDenied
        action = request.POST.get("action")
        comment = request.POST.get("comment", "").strip()
        services = {"approve": promotion_request_approve, "reject": promotion_request_reject}
        if action not in services:
            messages.error(request, "Choose Approve or Reject.")
            return HttpResponseRedirect(back)
        if len(comment) > TEXT_MAX:
            # The API's limit, so a decision reads the same whichever door it came in by.
            messages.error(request, f"A comment holds at most {TEXT_MAX} characters.")
            return HttpResponseRedirect(back)
        try:
            decided = services[action](actor=request.user, request_id=object_id, comment=comment)
        except ServiceError as exc:
            messages.error(request, exc.detail)
            return HttpResponseRedirect(back)
        messages.success(request, _decided_message(action, decided))
        return HttpResponseRedirect(back)


def _my_queue(request) -> bool:
    chosen = request.GET.get(ReviewScopeFilter.parameter_name)
    if chosen in (ReviewScopeFilter.MINE, ReviewScopeFilter.ALL):
        return chosen == ReviewScopeFilter.MINE
    return review.reviews_by_default(request.user)


def _queue_url(request) -> str:
    """Back to the queue as the reviewer left it: its filters ride along in the link."""
    url = reverse("admin:governance_promotionrequest_changelist")
    filters = request.GET.get("_changelist_filters")
    return f"{url}?{filters}" if filters else url


def _decided_message(action: str, decided: PromotionRequest) -> str:
    name = f"{decided.model.name} v{decided.version.version}"
    if action == "reject":
        return f"Rejected: {name} stays in stage {decided.version.stage}."
    if decided.status == Status.PROMOTED:
        return f"Approved: {name} is now in {decided.target_stage}."
    counted = valid_approvals(decided).count()
    return (
        f"Approved: {counted} of {decided.required_approvals} approvals; "
        f"{decided.required_approvals - counted} more needed before {name} moves."
    )


def open_requests_section(request, model):
    """The model page's list of open promotion requests, rendered by governance so the
    registry never imports it."""
    if not request.user.has_perm("governance.view_promotionrequest"):
        return None
    rows = list(
        model.promotions.filter(status__in=OPEN_STATUSES)
        .select_related("version", "requested_by")
        .order_by("-created_at", "-id")
    )
    changelist = reverse("admin:governance_promotionrequest_changelist")
    everything = format_html(
        '<p><a href="{}?model__id__exact={}&amp;review=all">All promotion requests of {}</a></p>',
        changelist,
        model.pk,
        model.name,
    )
    if not rows:
        return format_html("<p>No open promotion requests.</p>{}", everything)
    body = format_html_join(
        "",
        '<tr><td><a href="{}">#{}</a></td><td>v{}</td><td>{} → {}</td><td>{}</td><td>{}</td>'
        "<td>{} ago</td></tr>",
        (
            (
                reverse("admin:governance_promotionrequest_change", args=[r.pk]),
                r.pk,
                r.version.version,
                r.from_stage,
                r.target_stage,
                status_badge(r.status),
                r.requested_by.get_username(),
                timesince(r.created_at),
            )
            for r in rows
        ),
    )
    return format_html(
        '<table class="mg-open-requests"><thead><tr><th>request</th><th>version</th>'
        "<th>move</th><th>status</th><th>requested by</th><th>age</th></tr></thead>"
        "<tbody>{}</tbody></table>{}",
        body,
        everything,
    )


RegisteredModelAdmin.page_sections.append(("Open promotion requests", open_requests_section))

# Reviewers find their queue on the first page they see.
admin.site.index_template = "admin/governance/index.html"


# Django's user and group screens, replaced by audited ones.
admin_auth.register()
