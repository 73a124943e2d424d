"""With no broker, a gate runs in the web process after the response that queued it is
sent, under the worker's soft time limit."""

import json
import threading
import time
import urllib.request
from types import SimpleNamespace

import pytest

from audits.context import audit_context
from governance.checks import PASSED, CheckResult
from governance.models import CheckRun, Policy, PromotionRequest
from governance.services import check_runs
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_gate(monkeypatch, roles):
    """A gate named `slow` that does what each test tells it to."""
    behaviour = SimpleNamespace(run=None)
    gates = {**check_runs.registry(), "slow": behaviour}
    monkeypatch.setattr(check_runs, "registry", lambda: gates)
    Policy.objects.filter(name="staging").update(checks={"slow": {}})
    return behaviour


@pytest.fixture
def pipeline(make_user, api_for):
    ci = make_user("ci-bot", "ci")
    make_version(ci, make_model(make_user("olivia", "owner"), "fraud"))
    with audit_context():
        from governance.services import token_create

        _, secret = token_create(actor=None, user=ci, name="live")
    return secret


def request_staging(base: str, token: str) -> dict:
    body = json.dumps({"model": "fraud", "version": 1, "target_stage": "staging"}).encode()
    call = urllib.request.Request(  # noqa: S310 - the live server
        base + "/api/v1/promotions/",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(call, timeout=30) as response:  # noqa: S310 - the live server
        assert response.status == 201
        return json.loads(response.read())


def wait_for(condition, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_client_has_its_answer_before_the_gate_runs(live_server, settings, slow_gate, pipeline):
    answered, seen = threading.Event(), []

    def run(*, version, evaluation, settings):
        # The gate waits for the test to have its answer: run inside the request, it
        # would wait in vain (and record that).
        seen.append(answered.wait(timeout=10))
        return CheckResult(PASSED, "slow but fine")

    slow_gate.run = run
    body = request_staging(live_server.url, pipeline)
    answered.set()
    assert body["status"] == "checking"
    wait_for(lambda: PromotionRequest.objects.get(pk=body["id"]).status == "promoted")
    assert seen == [True]


def test_a_gate_past_the_soft_time_limit_ends_in_error(live_server, settings, slow_gate, pipeline):
    settings.CHECK_SOFT_TIME_LIMIT = 1

    def run(*, version, evaluation, settings):
        while True:  # a gate that never ends by itself
            time.sleep(0.01)

    slow_gate.run = run
    started = time.monotonic()
    body = request_staging(live_server.url, pipeline)
    assert time.monotonic() - started < 1  # answered without waiting for the gate
    wait_for(lambda: CheckRun.objects.get(request_id=body["id"]).status == "error")
    run = CheckRun.objects.get(request_id=body["id"])
    assert run.summary == "The check ran past its time limit."
    assert PromotionRequest.objects.get(pk=body["id"]).status == "checks_failed"
