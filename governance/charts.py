"""Server-side SVG for the review page: the page must be readable with no script and
no CDN, and the chart is evidence a reviewer may print or screenshot for the file.

Every label is escaped here; only the markup this module builds is marked safe."""

import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

GROUP_METRICS = (
    ("selection_rate", "Selection rate", "#2563eb"),
    ("true_positive_rate", "True positive rate", "#059669"),
    ("false_positive_rate", "False positive rate", "#d97706"),
)
PARITY_COLOUR = "#7c3aed"
FOUR_FIFTHS_COLOUR = "#dc2626"

LABEL_WIDTH = 140
PLOT_WIDTH = 520
VALUE_WIDTH = 50
TOP = 36
BAR_HEIGHT = 10
BAR_GAP = 2
ROW_GAP = 12
LEGEND_LINE = 18
WIDTH = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
LABEL_CHARS = 18


def group_order(name: str) -> list[tuple[int, int | str]]:
    """Natural order, so g2 comes before g10 (the results keep fairlearn's order)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value:  # NaN: a group with no positives (or negatives) has no rate
        return None
    return float(value)


def _x(value: float) -> float:
    return LABEL_WIDTH + max(0.0, min(1.0, value)) * PLOT_WIDTH


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def selection_thresholds(feature: dict[str, Any], limits: dict[str, Any]) -> dict[str, float]:
    """Where the selection-rate limits fall for this feature's groups.

    The parity floor is the highest selection rate less the allowed difference; the
    four-fifths line is the allowed ratio of the highest rate. A group's selection
    rate below either line is what makes the check fail."""
    rates = [
        r
        for r in (_number(g.get("selection_rate")) for g in feature.get("groups", {}).values())
        if r is not None
    ]
    top = max(rates, default=0.0)
    lines: dict[str, float] = {}
    max_difference = _number(limits.get("max_demographic_parity_difference"))
    if max_difference is not None:
        lines["parity_floor"] = max(0.0, top - max_difference)
    min_ratio = _number(limits.get("min_demographic_parity_ratio"))
    if min_ratio is not None:
        lines["four_fifths"] = top * min_ratio
    return lines


def fairness_chart(name: str, feature: dict[str, Any], limits: dict[str, Any]) -> SafeString:
    """Grouped horizontal bars, one row per group: its selection rate, true positive
    rate and false positive rate, with the selection-rate limits drawn as dashed lines.

    Each bar is a `rect.bar` carrying `data-group` and `data-metric`, so a test (or a
    person with the inspector) can count exactly one selection-rate bar per group."""
    groups: dict[str, dict[str, Any]] = feature.get("groups", {})
    small = set(feature.get("small_groups", []))
    lines = selection_thresholds(feature, limits)
    floor = max(lines.values(), default=0.0)
    row_height = len(GROUP_METRICS) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP + ROW_GAP
    plot_height = max(1, len(groups)) * row_height
    legend_top = TOP + plot_height + 16
    height = legend_top + LEGEND_LINE * 5 + 4
    title = f"Fairness by group for {name}"
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fairness-chart" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-label="{escape(title)}" data-feature="{escape(name)}" font-size="11">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(_describe(groups, lines))}</desc>",
    ]
    # The rate axis, 0 to 1, with gridlines every 0.2.
    for step in range(6):
        value = step / 5
        x = _x(value)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" '
            f'y2="{TOP + plot_height}" stroke="#d1d5db" stroke-width="1"/>'
            f'<text class="tick" x="{x:.1f}" y="{TOP - 8}" text-anchor="middle">{value:.1f}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{LABEL_WIDTH + PLOT_WIDTH / 2:.1f}" y="12" '
        f'text-anchor="middle" font-weight="bold">rate (0 to 1)</text>'
    )
    for index, group in enumerate(sorted(groups, key=group_order)):
        row = groups[group]
        top = TOP + index * row_height
        label = group if len(group) <= LABEL_CHARS else group[: LABEL_CHARS - 1] + "…"
        count = row.get("count")
        note = " *" if group in small else ""
        parts.append(
            f'<text class="group-label" x="{LABEL_WIDTH - 8}" '
            f'y="{top + row_height / 2 - ROW_GAP / 2 + 4:.1f}" text-anchor="end">'
            f"<title>{escape(group)} ({escape(count)} rows)</title>"
            f"{escape(label)}{note}</text>"
        )
        for position, (metric, metric_label, colour) in enumerate(GROUP_METRICS):
            value = _number(row.get(metric))
            y = top + position * (BAR_HEIGHT + BAR_GAP)
            width = 0.0 if value is None else _x(value) - LABEL_WIDTH
            below = metric == "selection_rate" and value is not None and value < floor
            outline = f' stroke="{FOUR_FIFTHS_COLOUR}" stroke-width="2"' if below else ""
            flag = ' data-below-threshold="true"' if below else ""
            parts.append(
                f'<rect class="bar" data-group="{escape(group)}" data-metric="{metric}" '
                f'data-value="{escape(_fmt(value))}"{flag} '
                f'x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                f'fill="{colour}"{outline}>'
                f"<title>{escape(group)}: {metric_label.lower()} {escape(_fmt(value))}</title>"
                f"</rect>"
                f'<text class="value" x="{LABEL_WIDTH + width + 4:.1f}" y="{y + BAR_HEIGHT - 1}" '
                f'font-size="9">{escape(_fmt(value))}</text>'
            )
    dashes = {"parity_floor": ("6 3", PARITY_COLOUR), "four_fifths": ("2 3", FOUR_FIFTHS_COLOUR)}
    for key, value in lines.items():
        dash, colour = dashes[key]
        x = _x(value)
        parts.append(
            f'<line class="threshold" data-threshold="{key}" data-value="{value:.4f}" '
            f'x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{TOP + plot_height}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>'
        )
    parts.extend(_legend(legend_top, lines, limits))
    parts.append("</svg>")
    # Every interpolated label above went through escape(); the rest is our markup.
    return mark_safe("".join(parts))  # noqa: S308 - labels are escaped where they are built


def _legend(top: float, lines: dict[str, float], limits: dict[str, Any]) -> list[str]:
    parts = []
    for index, (_, label, colour) in enumerate(GROUP_METRICS):
        y = top + index * LEGEND_LINE
        parts.append(
            f'<rect class="swatch" x="{LABEL_WIDTH}" y="{y}" width="12" height="10" '
            f'fill="{colour}"/><text class="legend" x="{LABEL_WIDTH + 18}" y="{y + 9}">'
            f"{label}</text>"
        )
    texts = {
        "parity_floor": (
            "6 3",
            PARITY_COLOUR,
            f"parity floor: highest selection rate \u2212 "
            f"{_fmt(_number(limits.get('max_demographic_parity_difference')))}",
        ),
        "four_fifths": (
            "2 3",
            FOUR_FIFTHS_COLOUR,
            f"ratio floor: {_fmt(_number(limits.get('min_demographic_parity_ratio')))} "
            f"\u00d7 highest selection rate",
        ),
    }
    column = LABEL_WIDTH + 180
    for index, key in enumerate(k for k in texts if k in lines):
        dash, colour, text = texts[key]
        y = top + index * LEGEND_LINE
        parts.append(
            f'<line x1="{column}" y1="{y + 5}" x2="{column + 24}" y2="{y + 5}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
            f'<text class="legend" x="{column + 30}" y="{y + 9}">{escape(text)} '
            f"= {lines[key]:.3f}</text>"
        )
    notes = (
        "A red outline marks a selection rate below a floor.",
        "* marks a group with fewer rows than the policy's minimum: its rates are noisy.",
    )
    for index, note in enumerate(notes, start=3):
        parts.append(
            f'<text class="legend note" x="{LABEL_WIDTH}" y="{top + index * LEGEND_LINE + 9}">'
            f"{note}</text>"
        )
    return parts


def _describe(groups: dict[str, dict[str, Any]], lines: dict[str, float]) -> str:
    rows = "; ".join(
        f"{group}: selection {_fmt(_number(row.get('selection_rate')))}, "
        f"TPR {_fmt(_number(row.get('true_positive_rate')))}, "
        f"FPR {_fmt(_number(row.get('false_positive_rate')))}"
        for group, row in groups.items()
    )
    floors = ", ".join(f"{key.replace('_', ' ')} {value:.3f}" for key, value in lines.items())
    return f"{rows}. Selection-rate floors: {floors or 'none'}."
