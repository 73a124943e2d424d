"""The PDF audit report: what a person reads to answer "who approved this model, on what
evidence, and is the record complete?".

Built only from the exported events (audits knows no other app): each model's card
from registered_model.created / .updated, its versions from model_version.registered,
their stage history from model_version.stage_changed, promotion requests with their
checks, figures and approvals from promotion.* and check.* events, then every event.
"""

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
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

from audits.chain import format_time

_STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9.5, alignment=TA_LEFT)
TIME = ParagraphStyle("time", parent=SMALL, fontSize=7, leading=9)
MONO = ParagraphStyle("mono", parent=SMALL, fontName="Courier", fontSize=7.5, leading=9.5)
H1 = ParagraphStyle("h1", parent=_STYLES["Title"], fontSize=18, leading=22, alignment=TA_LEFT)
H2 = ParagraphStyle("h2", parent=_STYLES["Heading2"], fontSize=13, leading=16, spaceBefore=10)
H3 = ParagraphStyle("h3", parent=_STYLES["Heading3"], fontSize=10.5, leading=13, spaceBefore=8)
LABEL = ParagraphStyle("label", parent=BODY, fontName="Helvetica-Bold")
NOTE = ParagraphStyle("note", parent=SMALL, textColor=colors.HexColor("#444444"))

GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)
FACTS = TableStyle(
    [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]
)
WIDTH = A4[0] - 36 * mm


def p(text: Any, style: ParagraphStyle = SMALL) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)), style)


def lines(*parts: Any, style: ParagraphStyle = SMALL) -> Paragraph:
    return Paragraph("<br/>".join(escape(str(part)) for part in parts if part), style)


def by(at: str, actor: str) -> str:
    return f"{at} by {actor}" if at else "not in these events"


def figures(value: Any) -> str:
    """Results as JSON, every number at full precision."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class Version:
    number: int
    registered_at: str = ""
    registered_by: str = ""
    artifact_sha256: str = ""
    artifact_uri: str = ""
    framework: str = ""
    metrics: dict = field(default_factory=dict)
    stages: list[tuple[str, str, str, Any, str]] = field(default_factory=list)


@dataclass
class Check:
    name: str
    round: Any
    verdict: str = "queued"
    summary: str = ""
    results: Any = None
    started_at: str = ""
    finished_at: str = ""


@dataclass
class Decision:
    reviewer: str
    decision: str
    at: str
    comment: str


@dataclass
class Request:
    id: Any
    version: Any = None
    target_stage: str = ""
    from_stage: str = ""
    requested_by: str = ""
    requested_at: str = ""
    justification: str = ""
    policy_digest: str = ""
    required_approvals: Any = None
    outcome: str = "checking"
    outcome_at: str = ""
    checks: dict[tuple, Check] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    history: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class Model:
    name: str
    created_at: str = ""
    created_by: str = ""
    owner: str = ""
    description: str = ""
    risk_tier: str = ""
    card: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    versions: dict[int, Version] = field(default_factory=dict)
    requests: dict[Any, Request] = field(default_factory=dict)

    def version(self, number) -> Version:
        return self.versions.setdefault(number, Version(number))

    def request(self, request_id) -> Request:
        return self.requests.setdefault(request_id, Request(request_id))


_FINAL = {
    "promotion.promoted": "promoted",
    "promotion.rejected": "rejected",
    "promotion.cancelled": "cancelled",
    "promotion.checks_failed": "checks_failed",
    "promotion.checks_passed": "awaiting_approval",
    "promotion.checks_rerun": "checking",
}


def collect(events: Iterable[dict]) -> dict[str, Model]:
    """The models, versions and requests the events tell of, by model name."""
    models: dict[str, Model] = {}
    for event in events:
        name = event.get("model")
        if not name:
            continue
        model = models.setdefault(name, Model(name))
        _apply(model, event)
    return models


def _apply(model: Model, event: dict) -> None:
    action, data, at, actor = event["action"], event["data"], event["occurred_at"], event["actor"]
    if action == "registered_model.created":
        model.created_at, model.created_by = at, actor
        model.owner = data.get("owner", actor)
        model.description = data.get("description", "")
        model.risk_tier = data.get("risk_tier", "")
        model.card = data.get("card") or {}
        model.tags = data.get("tags") or {}
    elif action == "registered_model.updated":
        for name, change in (data.get("changes") or {}).items():
            if name in ("description", "risk_tier", "card", "tags"):
                setattr(model, name, change.get("after"))
    elif action == "model_version.registered":
        version = model.version(data.get("version"))
        version.registered_at, version.registered_by = at, actor
        version.artifact_sha256 = data.get("artifact_sha256", "")
        version.artifact_uri = data.get("artifact_uri", "")
        version.framework = data.get("framework", "")
        version.metrics = data.get("metrics") or {}
    elif action == "model_version.stage_changed":
        model.version(data.get("version")).stages.append(
            (at, data.get("from", ""), data.get("to", ""), data.get("promotion_request"), actor)
        )
    elif action.startswith("check."):
        request = model.request(data.get("promotion_request"))
        key = (data.get("round"), data.get("check"))
        check = request.checks.setdefault(key, Check(data.get("check", ""), data.get("round")))
        if action == "check.started":
            check.verdict, check.started_at = "running", at
        else:
            check.verdict, check.finished_at = action.removeprefix("check."), at
            check.summary, check.results = data.get("summary", ""), data.get("results")
    elif action.startswith("promotion."):
        request = model.request(data.get("promotion_request"))
        request.version = data.get("version", request.version)
        request.target_stage = data.get("target_stage", request.target_stage)
        request.policy_digest = data.get("policy_digest", request.policy_digest)
        request.history.append((at, action, actor, data.get("reason") or ""))
        if action == "promotion.requested":
            request.requested_by, request.requested_at = actor, at
            request.from_stage = data.get("from_stage", "")
            request.justification = data.get("justification", "")
            request.required_approvals = (data.get("policy") or {}).get("required_approvals")
        elif action == "promotion.approved":
            request.decisions.append(Decision(actor, "approved", at, data.get("comment", "")))
        elif action == "promotion.rejected":
            request.decisions.append(Decision(actor, "rejected", at, data.get("comment", "")))
        if action in _FINAL:
            outcome = _FINAL[action]
            if action == "promotion.checks_passed" and data.get("to") == "promoted":
                outcome = "promoted"
            request.outcome, request.outcome_at = outcome, at


def build_report(
    events: list[dict],
    *,
    filters: dict[str, str],
    head: tuple[int, str],
    events_sha256: str,
    exported_by: str,
    generated_at: datetime,
) -> bytes:
    buffer = io.BytesIO()
    scope = f"model {filters['model']}" if filters.get("model") else "all models"
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Audit report: {scope}",
        author="modelgov",
        subject=f"Audit events up to chain head seq {head[0]}",
        invariant=True,
    )

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(
            18 * mm,
            9 * mm,
            f"modelgov audit report, {scope}, chain head seq {head[0]}; page {doc.page}",
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


def _facts(rows: list[tuple[str, Any]], style=SMALL) -> Table:
    table = Table(
        [
            [p(label, BODY), value if isinstance(value, Paragraph) else p(value, style)]
            for label, value in rows
        ],
        colWidths=[42 * mm, WIDTH - 42 * mm],
    )
    table.setStyle(FACTS)
    return table


def _grid(header: list[str], rows: list[list[Any]], widths: list[float], cls=Table) -> Table:
    cells = [[p(h) for h in header]]
    cells += [[c if isinstance(c, Paragraph) else p(c) for c in row] for row in rows]
    table = cls(cells, colWidths=widths, repeatRows=1)
    table.setStyle(GRID)
    return table


def _cover(events, filters, head, events_sha256, exported_by, generated_at, scope) -> list:
    first = events[0]["seq"] if events else None
    last = events[-1]["seq"] if events else None
    shown = ", ".join(f"{k}={v}" for k, v in sorted(filters.items())) or "none (every event)"
    return [
        Paragraph("Audit report", H1),
        p(f"Scope: {scope}", BODY),
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
                p(model.name, BODY),
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
    story: list = [Paragraph(f"Model {escape(model.name)}", H2)]
    story.append(
        _facts(
            [
                ("Risk tier", model.risk_tier or "not recorded"),
                ("Owner", model.owner or "not recorded"),
                ("Created", by(model.created_at, model.created_by)),
                ("Description", model.description),
                ("Tags", ", ".join(f"{k}: {v}" for k, v in sorted(model.tags.items()))),
            ],
            BODY,
        )
    )
    story.append(Paragraph("Model card", H3))
    if model.card:
        for section, value in model.card.items():
            text = "; ".join(value) if isinstance(value, list) else value
            story.append(
                KeepTogether([p(section.replace("_", " ").capitalize(), BODY), p(text, BODY)])
            )
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
                    p(f"v{number}", BODY),
                    lines(version.registered_at, version.registered_by, style=TIME),
                    p(version.artifact_sha256, MONO),
                    figures(version.metrics) if version.metrics else "",
                    history or "none",
                ]
            )
        story.append(
            _grid(
                ["Version", "Registered", "Artifact sha256", "Metrics", "Stage history"],
                rows,
                [12 * mm, 40 * mm, 40 * mm, 36 * mm, WIDTH - 128 * mm],
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
    story: list = [Paragraph(escape(title), H3)]
    story.append(
        _facts(
            [
                ("Requested", by(request.requested_at, request.requested_by)),
                ("From stage", request.from_stage),
                ("Justification", request.justification or "none given"),
                ("Policy digest", p(request.policy_digest, MONO)),
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
    story.append(Spacer(1, 2 * mm))
    if request.checks:
        story.append(
            _grid(
                ["Check", "Round", "Status", "Summary", "Figures"],
                [
                    [c.name, c.round, c.verdict, c.summary, p(figures(c.results), MONO)]
                    for c in request.checks.values()
                ],
                [22 * mm, 11 * mm, 15 * mm, 45 * mm, WIDTH - 93 * mm],
            )
        )
        story.append(Spacer(1, 2 * mm))
    if request.decisions:
        story.append(
            _grid(
                ["Reviewer", "Decision", "At", "Comment"],
                [[d.reviewer, d.decision, p(d.at, TIME), d.comment] for d in request.decisions],
                [28 * mm, 18 * mm, 40 * mm, WIDTH - 86 * mm],
            )
        )
    else:
        story.append(p("No approval or rejection in these events.", NOTE))
    story.append(Spacer(1, 2 * mm))
    story.append(
        _grid(
            ["At", "Event", "By", "Reason"],
            [[p(at, TIME), action, actor, reason] for at, action, actor, reason in request.history],
            [40 * mm, 40 * mm, 24 * mm, WIDTH - 104 * mm],
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
            [12 * mm, 40 * mm, 22 * mm, 40 * mm, WIDTH - 138 * mm, 24 * mm],
            cls=LongTable,
        ),
    ]
