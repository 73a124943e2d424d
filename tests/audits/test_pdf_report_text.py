"""The PDF report renders whatever text a model holds: every text field at its limit,
in Latin, Greek, Cyrillic, CJK, Arabic and emoji, with markup characters. The download
is complete, the text is drawn in the embedded DejaVu fonts, markup stays literal, and
long text is cut with a note pointing at the JSON Lines export."""

import io
import itertools
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from audits.models import AuditEvent, AuditExport
from audits.report_pdf import CELL_MAX, MISSING, PARAGRAPH_MAX, build_report, truncation_note
from registry.api.serializers import DESCRIPTION_MAX, TAG_VALUE_MAX, TAGS_MAX
from registry.cards import CARD_LIST_MAX, CARD_SECTIONS, CARD_TEXT_MAX
from registry.models import ModelVersion
from tests.evaluation_sets import binary_set
from tests.factories import make_evaluation, version_payload

pytestmark = pytest.mark.django_db

GREEK = "Ελληνικά γράμματα"
CYRILLIC = "Кириллица текст"
MARKUP = "<b>bold?</b> &amp; \"quoted\" 'single' a<b & c>d "
PIECES = [
    "Latin Ünïcödé façade ",
    f"{GREEK} ",
    f"{CYRILLIC} ",
    "中文字符测试日本語 ",
    "العربية نص ",
    "😀🎉👩‍💻 ",
    MARKUP,
]


def mixed(length: int, offset: int = 0) -> str:
    """`length` characters of the pieces above, in turn."""
    text = "".join(itertools.islice(itertools.cycle(PIECES[offset:] + PIECES[:offset]), 2_000))
    while len(text) < length:
        text += text
    return text[:length]


def pdf_fonts(reader: PdfReader) -> set[str]:
    names = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def hostile(report_cast, django_capture_on_commit_callbacks):
    """A high-risk model whose every text field is at its limit, a version with long
    metric names, an evaluation set whose sensitive feature and groups have long mixed
    names (so the fairness check's summary and figures are long), a promotion with a
    long justification approved by two reviewers with long comments."""
    users, api = report_cast
    name = "hostile-" + "n" * 120
    card = {
        section: mixed(CARD_TEXT_MAX, i)
        if kind == "text"
        else [mixed(1000, i + k) for k in range(CARD_LIST_MAX)]
        for i, (section, (kind, _)) in enumerate(CARD_SECTIONS.items())
    }
    tags = {f"tag{i}": mixed(TAG_VALUE_MAX, i) for i in range(TAGS_MAX)}
    created = api["olivia"].post(
        "/api/v1/models/",
        {
            "name": name,
            "risk_tier": "high",
            "description": mixed(DESCRIPTION_MAX),
            "card": card,
            "tags": tags,
        },
        format="json",
    )
    assert created.status_code == 201, created.content[:500]
    edited = api["olivia"].patch(
        f"/api/v1/models/{name}/", {"description": mixed(DESCRIPTION_MAX, 3)}, format="json"
    )
    assert edited.status_code == 200, edited.content[:500]

    metrics: dict = {"auc": 0.934567890123456}
    metrics |= {mixed(128, i): i / 7 for i in range(40)}
    registered = api["ci"].post(
        f"/api/v1/models/{name}/versions/",
        version_payload(
            "hostile",
            metrics=metrics,
            description=mixed(DESCRIPTION_MAX, 1),
            card={"limitations": mixed(CARD_TEXT_MAX, 2)},
            tags={"owner": mixed(TAG_VALUE_MAX, 4)},
        ),
        format="json",
    )
    assert registered.status_code == 201, registered.content[:500]
    patched = api["olivia"].patch(
        f"/api/v1/models/{name}/versions/1/",
        {"description": mixed(DESCRIPTION_MAX, 5)},
        format="json",
    )
    assert patched.status_code == 200, patched.content[:500]

    feature = mixed(CARD_TEXT_MAX, 6).replace(",", ";")
    frame = binary_set(rates={mixed(200, 1): 0.5, mixed(200, 2): 0.5})
    frame = frame.rename(columns={"group": feature})
    make_evaluation(
        users["ci"],
        ModelVersion.objects.get(model__name=name, version=1),
        frame,
        sensitive_features=(feature,),
    )
    with django_capture_on_commit_callbacks(execute=True):
        requested = api["ci"].post(
            "/api/v1/promotions/",
            {
                "model": name,
                "version": 1,
                "target_stage": "production",
                "justification": mixed(10_000, 2),
            },
            format="json",
        )
    assert requested.status_code == 201, requested.content[:500]
    request_id = requested.json()["id"]
    for reviewer in ("rita", "raj"):
        with django_capture_on_commit_callbacks(execute=True):
            decided = api[reviewer].post(
                f"/api/v1/promotions/{request_id}/approve/",
                {"comment": mixed(10_000, 4)},
                format="json",
            )
        assert decided.status_code == 200, decided.content[:500]
    assert decided.json()["status"] == "promoted"
    fairness = [c for c in decided.json()["checks"] if c["name"] == "fairness"]
    assert len(fairness[0]["summary"]) > CARD_TEXT_MAX
    return api, name


def test_a_report_of_text_at_every_limit_in_every_script_renders_whole(hostile):
    api, name = hostile
    response = api["carla"].get(f"/api/v1/audit/export/?format=pdf&model={name}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)

    export = AuditExport.objects.get(pk=response["X-Audit-Export-Id"])
    exported = AuditEvent.objects.get(seq=export.event_seq)
    assert exported.action == "audit.exported"
    assert (exported.data["format"], exported.data["complete"]) == ("pdf", True)

    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(body))
    pages = [page.extract_text() for page in reader.pages]
    text = flat("\n".join(pages))

    # Greek and Cyrillic are drawn as text: the model's own page holds them.
    model_page = next(page for page in pages if "Model hostile-" in page)
    assert GREEK in model_page and CYRILLIC in model_page
    # Markup characters are shown, never read as markup.
    assert flat(MARKUP) in text
    # Characters DejaVu has no glyph for (CJK, emoji) are shown as a replacement mark.
    assert MISSING in text
    # Long text is cut with a note: the card sections at 20,000 characters, the
    # description at 10,000, the fairness summary in its cell, the figures.
    assert truncation_note(CARD_TEXT_MAX, PARAGRAPH_MAX) in text
    assert truncation_note(DESCRIPTION_MAX, PARAGRAPH_MAX) in text
    assert re.search(r"\(truncated: [\d,]+ characters, [\d,]+ shown; the JSON Lines", text)
    assert "0.934567890123456" in text  # figures still at full precision
    assert "approved by rita" in text and "approved by raj" in text

    fonts = pdf_fonts(reader)
    assert fonts, "no font in the PDF"
    assert all("DejaVu" in font for font in fonts), fonts
    assert not any(base in font for font in fonts for base in ("Helvetica", "Courier", "Times"))


def _event(seq: int, action: str, text: str, **data) -> dict:
    """An event of a model named `text`, by an actor named `text`, about an object
    shown as `text`."""
    return {
        "seq": seq,
        "occurred_at": "2026-01-31T09:30:00.000000Z",
        "actor": text,
        "action": action,
        "object_type": "registered_model",
        "object_id": "1",
        "object_repr": text,
        "model": text,
        "data": data,
        "hash": "0" * 64,
        "prev_hash": "0" * 64,
    }


@pytest.mark.parametrize(
    "text",
    [
        "W" * 30_000,  # wide glyphs, no space to break at
        "\u2031" * 5_000,  # DejaVu Sans's widest glyph: two to a line in a narrow column
        "中" * 30_000,
        "\n" * 5_000 + "x",
        "&lt;" * 1_100 + "<br/>" * 200 + "\x00\x0b\udfff",
    ],
    ids=["wide", "widest", "cjk", "newlines", "markup-and-controls"],
)
def test_no_text_breaks_the_layout_in_any_cell(text):
    """Every field the report shows, in the narrowest columns too, holds the text."""
    assert len(text) > CELL_MAX
    request = {"promotion_request": 1, "version": 1}
    events = [
        _event(
            1,
            "registered_model.created",
            text,
            owner=text,
            description=text,
            risk_tier=text,
            card={text[:100]: text},
            tags={text[:50]: text},
        ),
        _event(
            2,
            "model_version.registered",
            text,
            version=1,
            artifact_sha256=text,
            framework=text,
            metrics={text: 1},
        ),
        _event(3, "model_version.stage_changed", text, to=text, **request),
        _event(4, "promotion.requested", text, target_stage=text, justification=text, **request),
        _event(5, "check.passed", text, check=text, round=text, summary=text, **request),
        _event(6, "check.failed", text, check="c", results={text: text}, **request),
        _event(7, "promotion.approved", text, comment=text, **request),
        _event(8, "promotion.cancelled", text, reason=text, **request),
    ]
    body = build_report(
        events,
        filters={"model": text, "actor": text},
        head=(8, "0" * 64),
        events_sha256="0" * 64,
        exported_by=text[:150],
        generated_at=datetime(2026, 1, 31, tzinfo=UTC),
    )
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) >= 3
    assert all("DejaVu" in font for font in pdf_fonts(reader))
