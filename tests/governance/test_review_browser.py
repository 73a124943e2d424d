"""The reviewers' workplace in a real headless Chromium (Debian's, never a downloaded
one), against a live server: what a reviewer sees, clicks and is refused."""

import pytest
from django.db import connections

from audits.context import audit_context
from audits.models import AuditEvent
from governance.models import Approval, PromotionRequest, Status
from registry.models import ModelVersion
from registry.services import model_permission_grant, registered_model_update
from tests.conftest import CHROMIUM
from tests.evaluation_sets import binary_set

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, and Django refuses
    # sync database calls beside a running loop; the test's own reads are sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ],
        )
        yield chromium
        chromium.close()
        # While Playwright's loop runs, Django hands this thread a separate database
        # connection (connections follow the async context); close it here, or it
        # outlives the test and blocks dropping the test database.
        connections.close_all()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def login(page, username: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def decision_url(request_id: int) -> str:
    return f"/admin/governance/promotionrequest/{request_id}/change/"


def assert_png(path) -> None:
    assert path.exists(), path
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, (path, len(data))


CARD = {
    "intended_use": "Flag card transactions for a fraud analyst's review.",
    "out_of_scope_uses": ["Blocking a card without a human decision"],
    "limitations": "Trained on one market; merchants new to the network score high.",
    "contacts": ["fraud-ml@example.com"],
}
LINEAGE = {
    "dataset_uri": "s3://data/fraud/2026-10.parquet",
    "dataset_sha256": "9" * 64,
    "code_repo": "https://git.example.com/fraud/model",
    "code_commit": "3f2a9c1e",
    "run_id": "run-2026-11-02-7",
}


@pytest.fixture
def in_review(world):
    """fraud documented, v1 in production, and v3 (with lineage, reported metrics and a
    three-group evaluation set) waiting for one approval."""
    with audit_context():
        registered_model_update(actor=world.users["olivia"], model=world.model, card=CARD)
    first = world.request(version=1)
    assert world.act("raj", first["id"], "approve", "Baseline.").status_code == 200
    rates = {"north": 0.5, "south": 0.5, "east": 0.5}
    version = world.add_version(
        "v3",
        frame=binary_set(3000, seed=3, rates=rates),
        lineage=LINEAGE,
        metrics={"accuracy": 0.85, "f1": 0.85},
        framework="sklearn",
        artifact_size=48_213,
    )
    return version, world.request(version=version.version)


def test_a_reviewer_approves_from_the_queue_and_the_version_goes_to_production(
    world, in_review, page, screenshots
):
    version, body = in_review
    assert body["status"] == "awaiting_approval", body
    fairness = next(c for c in body["checks"] if c["name"] == "fairness")
    groups = fairness["results"]["features"]["group"]["groups"]
    assert set(groups) == {"north", "south", "east"}

    login(page, "rita")
    page.get_by_role("link", name="Promotions awaiting my review (1)").click()
    page.wait_for_url("**/admin/governance/promotionrequest/?review=mine")
    assert page.locator("h1").inner_text() == "Promotions awaiting my review"
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1  # v1's request is decided: not in the queue
    row = rows.first.inner_text()
    for text in ("fraud", "v3", "production", "medium", "ci-bot", "0 of 1"):
        assert text in row, (text, row)
    assert rows.first.locator(".mg-badge-check").count() == 3
    # v3's artifact is an s3:// URI: the integrity check could not read it, and says so.
    unverified = rows.first.locator('.mg-badge-check[data-state="unverified"]')
    assert unverified.inner_text() == "integrity: unverified"
    page.screenshot(path=screenshots / "queue.png", full_page=True)

    rows.first.get_by_role("link", name=f"#{body['id']}").click()
    page.wait_for_url(f"**{decision_url(body['id'])}?**")
    checks = page.locator("article.mg-check")
    assert checks.count() == 3
    assert {checks.nth(i).get_attribute("data-check") for i in range(3)} == {
        "fairness",
        "integrity",
        "validation",
    }
    assert {
        checks.nth(i).get_attribute("data-check"): checks.nth(i).get_attribute("data-status")
        for i in range(3)
    } == {"fairness": "passed", "integrity": "unverified", "validation": "passed"}
    chart = page.locator('svg.fairness-chart[data-feature="group"]')
    assert chart.get_attribute("role") == "img"
    bars = chart.locator('rect.bar[data-metric="selection_rate"]')
    assert bars.count() == len(groups)
    assert {bars.nth(i).get_attribute("data-group") for i in range(bars.count())} == set(groups)
    assert chart.locator("rect.bar").count() == 3 * len(groups)
    assert chart.locator("line.threshold").count() == 2
    assert "Flag card transactions" in page.locator("#version").inner_text()
    lineage = page.locator("#lineage").inner_text()
    assert all(value in lineage for value in LINEAGE.values())
    assert version.artifact_sha256 in page.locator("#artifact").inner_text()
    comparison = page.locator("#metrics-comparison")
    assert "production v1" in comparison.text_content()
    assert comparison.locator("tbody tr").count() == 5
    page.screenshot(path=screenshots / "decision.png", full_page=True)
    chart.screenshot(path=screenshots / "chart.png")

    page.fill("#id_comment", "Figures hold against production; fairness within limits.")
    page.click("#approve")
    success = page.locator(".messagelist .success")
    success.wait_for()
    assert "fraud v3 is now in production" in success.inner_text()
    page.screenshot(path=screenshots / "approved.png", full_page=True)

    version.refresh_from_db()
    assert version.stage == "production"
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "archived"
    promoted = AuditEvent.objects.filter(
        action="promotion.promoted", object_id=str(body["id"])
    ).get()
    assert promoted.actor == "rita"
    approval = Approval.objects.get(request_id=body["id"])
    assert (approval.reviewer.username, approval.decision) == ("rita", "approved")
    assert approval.comment == "Figures hold against production; fairness within limits."
    # The page now shows the decision in its timeline, and no buttons.
    assert page.locator("#approve").count() == 0
    assert "promotion.promoted" in page.locator("#timeline").inner_text()

    for name in ("queue.png", "decision.png", "chart.png", "approved.png"):
        assert_png(screenshots / name)
    print(f"\nscreenshots: {screenshots}")


def test_a_reject_without_a_comment_shows_why_and_changes_nothing(world, page):
    body = world.request()
    login(page, "rita")
    page.goto(decision_url(body["id"]))
    start = world.mark()

    page.click("#reject")
    error = page.locator(".messagelist .error")
    error.wait_for()
    assert error.inner_text() == "A rejection needs a comment."
    assert page.url.endswith(decision_url(body["id"]))

    assert PromotionRequest.objects.get(pk=body["id"]).status == Status.AWAITING_APPROVAL
    assert not Approval.objects.filter(request_id=body["id"]).exists()
    assert world.mark() == start
    # The buttons are still there, to try again with a comment.
    assert page.locator("#reject").is_visible()


def test_the_requester_who_reviews_sees_no_buttons_and_a_forged_post_is_refused(
    world, page, screenshots
):
    with audit_context():
        model_permission_grant(
            actor=world.users["olivia"], model=world.model, permission="change", user="otto"
        )
    body = world.request(who="otto")
    assert body["status"] == "awaiting_approval", body

    login(page, "otto")
    page.goto(decision_url(body["id"]))
    assert page.locator("#approve").count() == 0
    assert page.locator("#reject").count() == 0
    refusal = page.locator("#decision").inner_text()
    assert "The requester of a promotion never decides it." in refusal
    page.screenshot(path=screenshots / "requester.png", full_page=True)
    assert_png(screenshots / "requester.png")

    start = world.mark()
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        f"/admin/governance/promotionrequest/{body['id']}/decide/",
        form={"csrfmiddlewaretoken": csrf, "action": "approve", "comment": "my own"},
    )
    # Refused by the service: a message on the decision page, not an error page.
    assert forged.status == 200
    assert forged.url.endswith(decision_url(body["id"]))
    assert "The requester of a promotion never decides it." in forged.text()
    without_token = page.request.post(
        f"/admin/governance/promotionrequest/{body['id']}/decide/",
        form={"action": "approve", "comment": "my own"},
    )
    assert without_token.status == 403

    assert not Approval.objects.filter(request_id=body["id"]).exists()
    assert world.mark() == start
    assert PromotionRequest.objects.get(pk=body["id"]).status == Status.AWAITING_APPROVAL
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "none"
