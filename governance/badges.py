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
    # Not green: the check could not read what it was to verify. Dark yellow, apart
    # from every other check colour, and still 4.9:1 against the white text.
    "unverified": "#a16207",
    "failed": "#b91c1c",
    "error": "#7c2d12",
}
DECISION_COLOURS = {"approved": "#15803d", "rejected": "#b91c1c"}


def badge(text: str, colour: str, *, title: str = "", kind: str, state: str) -> SafeString:
    # Styled inline, so a badge reads the same on any admin page, with or without our
    # stylesheet; white on these colours keeps a contrast ratio of at least 4.5.
    return format_html(
        '<span class="mg-badge mg-badge-{}" data-state="{}" title="{}" style="background:{};'
        "color:#fff;border-radius:8px;padding:1px 8px;font-size:11px;white-space:nowrap;"
        'display:inline-block">{}</span>',
        kind,
        state,
        title,
        colour,
        text,
    )


def status_badge(status: str) -> SafeString:
    colour = STATUS_COLOURS.get(status, "#6b7280")
    return badge(status.replace("_", " "), colour, kind="status", state=status)


def check_badge(name: str, status: str, summary: str = "") -> SafeString:
    return badge(
        f"{name}: {status}",
        CHECK_COLOURS.get(status, "#6b7280"),
        title=summary,
        kind="check",
        state=status,
    )


def decision_badge(decision: str) -> SafeString:
    colour = DECISION_COLOURS.get(decision, "#6b7280")
    return badge(decision, colour, kind="decision", state=decision)
