"""The PDF audit report: what a person reads to answer "who approved this model, on what
evidence, and is the record complete?".

Laid out from what audits.report_reader reads in the exported events (each model's
card, versions, stage history and promotion requests), then every event. Whatever
the text in them, it is drawn in the embedded DejaVu fonts and cut where it would run
too long (PARAGRAPH_MAX, CELL_MAX), so every report can be laid out.
"""

import io
import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.fonts import addMapping
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.paragraph import cleanBlockQuotedText
from reportlab.platypus.paraparser import ParaFrag

from audits.chain import format_time
from audits.report_reader import Model, Request, collect

# DejaVu Sans (Bitstream Vera licence, audits/fonts/LICENSE), embedded in every report:
# the PDF's built-in Helvetica and Courier draw Latin-1 alone, DejaVu draws Latin,
# Greek, Cyrillic, Armenian, Georgian, Hebrew and Arabic letters (unshaped) and many
# symbols. It has no CJK ideographs and few emoji.
FONT_DIR = Path(__file__).resolve().parent / "fonts"
SANS, SANS_BOLD, MONO_FONT = "DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"
_FONT_FILES = {
    SANS: "DejaVuSans.ttf",
    SANS_BOLD: "DejaVuSans-Bold.ttf",
    MONO_FONT: "DejaVuSansMono.ttf",
}

# Text longer than these is cut, with a note saying how much was left out: a paragraph
# of free text (a description, a card section, a justification, a comment, a check's
# figures), and a table cell. A cell is also cut further until it fits in half a frame
# (A4 less the margins), because a table row taller than a page cannot be laid out.
PARAGRAPH_MAX = 4_000
CELL_MAX = 1_000
CELL_HEIGHT = (A4[1] - 32 * mm) / 2

_STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontName=SANS, fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9.5, alignment=TA_LEFT)
# A timestamp fits on one line in a 40 mm column.
TIME = ParagraphStyle("time", parent=SMALL, fontSize=6.5, leading=8.5)
MONO = ParagraphStyle("mono", parent=SMALL, fontName=MONO_FONT, fontSize=7.5, leading=9.5)
FIGURES = ParagraphStyle("figures", parent=MONO, leftIndent=4 * mm)
H1 = ParagraphStyle(
    "h1", parent=_STYLES["Title"], fontName=SANS_BOLD, fontSize=18, leading=22, alignment=TA_LEFT
)
H2 = ParagraphStyle(
    "h2", parent=_STYLES["Heading2"], fontName=SANS_BOLD, fontSize=13, leading=16, spaceBefore=10
)
H3 = ParagraphStyle(
    "h3", parent=_STYLES["Heading3"], fontName=SANS_BOLD, fontSize=10.5, leading=13, spaceBefore=8
)
LABEL = ParagraphStyle("label", parent=BODY, fontName=SANS_BOLD, spaceBefore=3)
TEXT = ParagraphStyle("text", parent=BODY, leftIndent=4 * mm)
NOTE = ParagraphStyle("note", parent=SMALL, textColor=colors.HexColor("#444444"))

_CELLS = [
    ("FONTNAME", (0, 0), (-1, -1), SANS),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
]
GRID = TableStyle(
    [
        *_CELLS,
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)
FACTS = TableStyle(
    [
        *_CELLS,
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]
)
WIDTH = A4[0] - 36 * mm
# What both table styles take from a cell's width, left and right.
_PADDING = 6


@cache
def register_fonts() -> dict[str, frozenset[int]]:
    """Register the fonts with reportlab, once per process; the characters each has a
    glyph for, by font name."""
    glyphs = {}
    for name, filename in _FONT_FILES.items():
        font = TTFont(name, str(FONT_DIR / filename))
        pdfmetrics.registerFont(font)
        glyphs[name] = frozenset(font.face.charToGlyph)
    # Regular and bold last: reportlab reads a font's weight and slant back from the
    # last mapping made to it.
    for bold, italic in ((0, 1), (1, 1), (0, 0), (1, 0)):
        addMapping(SANS, bold, italic, SANS_BOLD if bold else SANS)
        addMapping(MONO_FONT, bold, italic, MONO_FONT)
    return glyphs


# C0 controls but tab, line feed and carriage return, DEL, and lone surrogates (which
# JSON can carry and UTF-8 cannot encode).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MISSING = "\ufffd"


def drawable(text: str, font: str) -> str:
    """`text` with each character the font has no glyph for shown as U+FFFD: a reader
    sees that something is there (a CJK ideograph, an emoji) rather than a gap."""
    if text.isascii():
        return _UNPRINTABLE.sub(MISSING, text)
    glyphs = register_fonts()[font]
    return "".join(c if ord(c) in glyphs else MISSING for c in _UNPRINTABLE.sub(MISSING, text))


def truncation_note(total: int, shown: int) -> str:
    return (
        f"… (truncated: {total:,} characters, {shown:,} shown; "
        "the JSON Lines export holds all of it)"
    )


_TEMPLATES: dict[tuple[str, bool], ParaFrag] = {}


def _fragment(style: ParagraphStyle, text: str, *, note: bool = False) -> ParaFrag:
    """A run of text in `style` (the note's grey when `note`), made without Paragraph's
    markup parser: text from users is never read as markup, and needs no escaping,
    whose entities would each cost a fragment of their own when lines are broken."""
    key = (style.name, note)
    if key not in _TEMPLATES:
        register_fonts()
        sample = f'<font name="{SANS}" color="#555555">x</font>' if note else "x"
        _TEMPLATES[key] = Paragraph(sample, style).frags[0]
    return _TEMPLATES[key].clone(text=text)


def p(text: Any, style: ParagraphStyle = SMALL, limit: int = PARAGRAPH_MAX) -> Paragraph:
    """A paragraph of `text` as it is, at most `limit` characters of it, and the
    truncation note when that is not all."""
    text = "" if text is None else str(text)
    shown = drawable(cleanBlockQuotedText(text[:limit]), style.fontName)
    fragments = [_fragment(style, shown)]
    if len(text) > limit:
        fragments.append(_fragment(style, " " + truncation_note(len(text), limit), note=True))
    return Paragraph(shown, style, frags=fragments)


def cell(value: Any, width: float, style: ParagraphStyle = SMALL) -> Paragraph:
    """A table cell that fits on a page: at most CELL_MAX characters, fewer while its
    column is too narrow to hold them in half a frame."""
    if isinstance(value, Paragraph):
        return value
    text = "" if value is None else str(value)
    # A character per line at worst: text this short fits however it wraps.
    if len(text) * style.leading <= CELL_HEIGHT:
        return p(text, style, len(text))
    limit = min(len(text), CELL_MAX)
    while True:
        paragraph = p(text, style, limit)
        height = paragraph.wrap(width - _PADDING, CELL_HEIGHT)[1]
        if limit == 0 or height <= CELL_HEIGHT:
            return paragraph
        # Lines grow with the characters shown: scale down, with room for the note.
        limit = min(limit - 1, int(limit * 0.9 * CELL_HEIGHT / height))


def labelled(label: str, text: Any, style: ParagraphStyle = TEXT) -> list:
    """A label over a paragraph of free text: outside any table, so it may run over
    pages."""
    return [p(label, LABEL), p(text, style)]


def by(at: str, actor: str) -> str:
    return f"{at} by {actor}" if at else "not in these events"


def figures(value: Any) -> str:
    """Results as JSON, every number at full precision."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def build_report(
    events: list[dict],
    *,
    filters: dict[str, str],
    head: tuple[int, str],
    events_sha256: str,
    exported_by: str,
    generated_at: datetime,
) -> bytes:
    register_fonts()
    buffer = io.BytesIO()
    scope = f"model {filters['model']}" if filters.get("model") else "all models"
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Audit report: {scope[:200]}",
        author="modelgov",
        subject=f"Audit events up to chain head seq {head[0]}",
        invariant=True,
        # The canvas otherwise names Helvetica on every page, drawn with or not.
        initialFontName=SANS,
    )
    # The footer is one line: a filter longer than this would run off the page.
    short_scope = drawable(scope if len(scope) <= 60 else scope[:59] + "…", SANS)

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(SANS, 7)
        canvas.drawString(
            18 * mm,
            9 * mm,
            f"modelgov audit report, {short_scope}, chain head seq {head[0]}; page {doc.page}",
        )
        canvas.restoreState()

    models = collect(events)
    story = _cover(events, filters, head, events_sha256, exported_by, generated_at, scope)
    story += _summary(models)
    for model in models.values():
        story += [PageBreak(), *_model_section(model)]
    story += [PageBreak(), *_events_section(events)]
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


_LABEL_WIDTH = 42 * mm


def _facts(rows: list[tuple[str, Any]], style=SMALL) -> Table:
    table = Table(
        [
            [cell(label, _LABEL_WIDTH, BODY), cell(value, WIDTH - _LABEL_WIDTH, style)]
            for label, value in rows
        ],
        colWidths=[_LABEL_WIDTH, WIDTH - _LABEL_WIDTH],
    )
    table.setStyle(FACTS)
    return table


def _grid(header: list[str], rows: list[list[Any]], widths: list[float], cls=Table) -> Table:
    cells = [[cell(h, width) for h, width in zip(header, widths, strict=True)]]
    cells += [[cell(c, width) for c, width in zip(row, widths, strict=True)] for row in rows]
    table = cls(cells, colWidths=widths, repeatRows=1)
    table.setStyle(GRID)
    return table


def _cover(events, filters, head, events_sha256, exported_by, generated_at, scope) -> list:
    first = events[0]["seq"] if events else None
    last = events[-1]["seq"] if events else None
    shown = ", ".join(f"{k}={v}" for k, v in sorted(filters.items())) or "none (every event)"
    return [
        Paragraph("Audit report", H1),
        p(f"Scope: {scope}", BODY, CELL_MAX),
        Spacer(1, 4 * mm),
        _facts(
            [
                ("Generated", f"{format_time(generated_at)} by {exported_by}"),
                ("Filters", shown),
                (
                    "Events",
                    f"{len(events)}" + (f" (seq {first} to {last})" if events else ""),
                ),
                ("Chain head at export", f"seq {head[0]}"),
                ("Chain head hash", p(head[1], MONO)),
                ("Events digest", p(events_sha256, MONO)),
            ]
        ),
        Spacer(1, 4 * mm),
        p(
            "The events digest is the SHA-256 of the JSON Lines export of exactly the events "
            "in this report (GET /api/v1/audit/export/?format=jsonl with the same filters, "
            "while no newer event matches them). A document cannot contain its own digest: "
            "the SHA-256 of this PDF is in its signed manifest, linked from the download. "
            "Anyone holding an unfiltered JSON Lines export can recompute the chain up to "
            "the head above with `python manage.py verify_audit --file`.",
            NOTE,
        ),
        p(
            f"Text longer than {PARAGRAPH_MAX:,} characters ({CELL_MAX:,} in a table, fewer "
            "where a column is narrow) is cut here, with a note saying how much; the JSON "
            f"Lines export holds all of it. Characters the report's font cannot draw (CJK "
            f"ideographs, emoji) are shown as {MISSING}.",
            NOTE,
        ),
    ]


def _summary(models: dict[str, Model]) -> list:
    if not models:
        return [Spacer(1, 4 * mm), p("No model's events in this selection.", NOTE)]
    rows = []
    for model in models.values():
        # A version's stage is where its last recorded move took it.
        production = [
            f"v{number}"
            for number, version in model.versions.items()
            if version.stages and version.stages[-1][2] == "production"
        ]
        outcomes: dict[str, int] = {}
        for request in model.requests.values():
            outcomes[request.outcome] = outcomes.get(request.outcome, 0) + 1
        rows.append(
            [
                cell(model.name, 50 * mm, BODY),
                model.risk_tier,
                len(model.versions),
                ", ".join(production) or "none",
                ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "none",
            ]
        )
    return [
        Paragraph("Models in this report", H3),
        _grid(
            ["Model", "Risk tier", "Versions", "In production", "Promotion requests"],
            rows,
            [50 * mm, 20 * mm, 18 * mm, 24 * mm, WIDTH - 112 * mm],
        ),
    ]


def _model_section(model: Model) -> list:
    story: list = [p(f"Model {model.name}", H2, CELL_MAX)]
    story.append(
        _facts(
            [
                ("Risk tier", model.risk_tier or "not recorded"),
                ("Owner", model.owner or "not recorded"),
                ("Created", by(model.created_at, model.created_by)),
            ],
            BODY,
        )
    )
    story += labelled("Description", model.description or "none")
    tags = "; ".join(f"{k}: {v}" for k, v in sorted((model.tags or {}).items()))
    story += labelled("Tags", tags or "none")

    story.append(Paragraph("Model card", H3))
    if model.card:
        for section, value in model.card.items():
            text = "; ".join(map(str, value)) if isinstance(value, list) else value
            title = str(section).replace("_", " ").capitalize()
            # Heading and the start of its text on one page; a long text still splits.
            story.append(KeepTogether(labelled(title, text)))
    else:
        story.append(p("No model card in these events.", NOTE))

    story.append(Paragraph("Versions", H3))
    if model.versions:
        rows = []
        for number in sorted(model.versions, key=lambda n: (n is None, n)):
            version = model.versions[number]
            history = "; ".join(
                f"{at}: {before} to {after}" + (f" (request #{req})" if req else "")
                for at, before, after, req, _ in version.stages
            )
            rows.append(
                [
                    p(f"v{number}", BODY, CELL_MAX),
                    cell(by(version.registered_at, version.registered_by), 40 * mm, TIME),
                    p(version.artifact_sha256, MONO, CELL_MAX),
                    figures(version.metrics) if version.metrics else "",
                    history or "none",
                ]
            )
        story.append(
            _grid(
                ["Version", "Registered", "Artifact sha256", "Metrics", "Stage history"],
                rows,
                [14 * mm, 40 * mm, 40 * mm, 36 * mm, WIDTH - 130 * mm],
            )
        )
    else:
        story.append(p("No version registered in these events.", NOTE))

    story.append(Paragraph("Promotion requests", H3))
    if not model.requests:
        story.append(p("No promotion request in these events.", NOTE))
    for request in sorted(model.requests.values(), key=lambda r: (r.requested_at, str(r.id))):
        story += _request_section(model, request)
    return story


def _request_section(model: Model, request: Request) -> list:
    title = (
        f"Request #{request.id}: {model.name} v{request.version} to {request.target_stage} "
        f"({request.outcome})"
    )
    story: list = [p(title, H3, CELL_MAX)]
    story.append(
        _facts(
            [
                ("Requested", by(request.requested_at, request.requested_by)),
                ("From stage", request.from_stage),
                ("Policy digest", p(request.policy_digest, MONO, CELL_MAX)),
                ("Approvals required", request.required_approvals),
                (
                    "Outcome",
                    f"{request.outcome} at {request.outcome_at}"
                    if request.outcome_at
                    else request.outcome,
                ),
            ]
        )
    )
    story += labelled("Justification", request.justification or "none given")
    story.append(Spacer(1, 2 * mm))
    if request.checks:
        story.append(
            _grid(
                ["Check", "Round", "Status", "Summary"],
                [[c.name, c.round, c.verdict, c.summary] for c in request.checks.values()],
                [22 * mm, 11 * mm, 17 * mm, WIDTH - 50 * mm],
            )
        )
        for check in request.checks.values():
            title = p(f"Figures of {check.name}, round {check.round}", LABEL, CELL_MAX)
            if check.results is not None:
                story += [title, p(figures(check.results), FIGURES)]
            elif check.results_sha256:
                kept = (
                    f"{check.results_bytes} bytes, kept by the check run "
                    f"(GET /api/v1/promotions/{request.id}/); SHA-256 {check.results_sha256}"
                )
                story += [title, p(kept, FIGURES, CELL_MAX)]
        story.append(Spacer(1, 2 * mm))
    if request.decisions:
        story.append(p("Approvals and rejections", LABEL))
        for decision in request.decisions:
            story += [
                p(f"{decision.decision} by {decision.reviewer} at {decision.at}", BODY, CELL_MAX),
                p(decision.comment or "no comment", TEXT),
            ]
    else:
        story.append(p("No approval or rejection in these events.", NOTE))
    story.append(Spacer(1, 2 * mm))
    story.append(
        _grid(
            ["At", "Event", "By", "Reason"],
            [[p(at, TIME), action, actor, reason] for at, action, actor, reason in request.history],
            [40 * mm, 44 * mm, 24 * mm, WIDTH - 108 * mm],
        )
    )
    return story


def _events_section(events: list[dict]) -> list:
    rows = [
        [
            e["seq"],
            p(e["occurred_at"], TIME),
            e["actor"],
            e["action"],
            e["object_repr"],
            p(e["hash"][:12], MONO),
        ]
        for e in events
    ]
    return [
        Paragraph("Events", H2),
        p("Oldest first. Hashes are shortened here; the exports carry them in full.", NOTE),
        Spacer(1, 2 * mm),
        _grid(
            ["Seq", "Occurred (UTC)", "Actor", "Action", "Object", "Hash"],
            rows,
            [12 * mm, 39 * mm, 22 * mm, 44 * mm, WIDTH - 139 * mm, 22 * mm],
            cls=LongTable,
        ),
    ]
