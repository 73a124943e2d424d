"""Coloured badges for statuses, shared by the queue's columns and the review pages."""

from django.utils.html import format_html
from django.utils.safestring import SafeString

STATUS_COLOURS = {
    "checking": "#1d4ed8",
    "checks_failed": "#b91c1c",
    "awaiting_approval": "#b45309",
    "rejected": "#7f1d1d",
    "cancelled": "#6b7280",
    "promoted": "#15803d",
}
CHECK_COLOURS = {
    "queued": "#6b7280",
    "running": "#1d4ed8",
    "passed": "#15803d",
    "failed": "#b91c1c",
    "error": "#7c2d12",
}
DECISION_COLOURS = {"approved": "#15803d", "rejected": "#b91c1c"}


def badge(text: str, colour: str, *, title: str = "", kind: str = "") -> SafeString:
    return format_html(
        '<span class="mg-badge{}" title="{}" style="background:{};color:#fff;border-radius:8px;'
        'padding:1px 8px;font-size:11px;white-space:nowrap;display:inline-block">{}</span>',
        f" mg-badge-{kind}" if kind else "",
        title,
        colour,
        text,
    )


def status_badge(status: str) -> SafeString:
    return badge(status.replace("_", " "), STATUS_COLOURS.get(status, "#6b7280"), kind="status")


def check_badge(name: str, status: str, summary: str = "") -> SafeString:
    return badge(
        f"{name}: {status}",
        CHECK_COLOURS.get(status, "#6b7280"),
        title=summary,
        kind=f"check {status}",
    )


def decision_badge(decision: str) -> SafeString:
    return badge(decision, DECISION_COLOURS.get(decision, "#6b7280"), kind="decision")
