from django import template
from django.urls import reverse

from governance import badges
from governance.models import OPEN_STATUSES, PromotionRequest
from governance.review import reviews_by_default
from governance.selectors import awaiting_decision_by
from registry.admin import stage_badge as registry_stage_badge

register = template.Library()


@register.filter
def status_badge(status):
    return badges.status_badge(str(status))


@register.filter
def check_badge(run):
    return badges.check_badge(run.name, run.status, run.summary)


@register.filter
def decision_badge(decision):
    return badges.decision_badge(str(decision))


@register.filter
def stage_badge(stage):
    return registry_stage_badge(str(stage))


@register.filter
def figure(value, places=4):
    """A figure for reading; the stored results keep full precision."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else value
    return f"{value:.{int(places)}f}"


@register.filter
def signed(value, places=4):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:+.{int(places)}f}"


@register.inclusion_tag("admin/governance/queue_link.html", takes_context=True)
def review_queue_link(context):
    """The index's way into the queue: reviewers see how many requests wait for them."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("governance.view_promotionrequest"):
        return {"show": False}
    url = reverse("admin:governance_promotionrequest_changelist")
    if reviews_by_default(user):
        count = awaiting_decision_by(PromotionRequest.objects.all(), user).count()
        return {"show": True, "mine": True, "count": count, "url": f"{url}?review=mine"}
    count = PromotionRequest.objects.filter(status__in=OPEN_STATUSES).count()
    return {"show": True, "mine": False, "count": count, "url": f"{url}?review=all"}
