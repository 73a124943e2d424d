"""Gates within bounds: a feature with too many groups ends the fairness gate in
`error` before any rate is computed, and large results are kept once, by the check
run, with their digest in the audit event."""

import hashlib

import pytest

from audits.chain import canonical
from audits.models import AuditEvent
from governance.checks import fairness
from governance.models import CheckRun
from tests.evaluation_sets import binary_set

pytestmark = pytest.mark.django_db

LENIENT = {
    "fairness": {
        "max_demographic_parity_difference": 1,
        "min_demographic_parity_ratio": 0,
        "max_equalized_odds_difference": 1,
        "min_group_size": 0,
    }
}


def many_groups(count: int, rows_each: int = 3):
    frame = binary_set(rows=count * rows_each, seed=4)
    frame["group"] = [f"g{i % count:05d}" for i in range(len(frame))]
    return frame


def test_a_fairness_evaluation_with_1001_groups_ends_the_gate_in_error(world):
    version = world.add_version("many", many_groups(1001))
    evaluation = version.evaluations.get()
    result = fairness.run(version=version, evaluation=evaluation, settings={})
    assert result.status == "error"
    assert result.summary == (
        "group has 1001 groups; the policy allows at most 1000 per sensitive feature "
        "(checks.fairness.max_groups)."
    )
    assert result.results == {"feature": "group", "groups": 1001, "max_groups": 1000}

    # and through a promotion request, as a CI pipeline meets it
    request = world.request(version=version.version)
    assert request["status"] == "checks_failed"
    assert {c["name"]: c["status"] for c in request["checks"]}["fairness"] == "error"


def test_the_policy_sets_the_group_limit(world):
    version = world.add_version("some", many_groups(40))
    evaluation = version.evaluations.get()
    assert (
        fairness.run(version=version, evaluation=evaluation, settings={"max_groups": 39}).status
        == "error"
    )
    limits = LENIENT["fairness"] | {"max_groups": 40}
    assert fairness.run(version=version, evaluation=evaluation, settings=limits).status == "passed"


def test_large_results_are_kept_by_the_check_run_and_digested_in_the_log(world, settings):
    from governance.models import Policy

    Policy.objects.filter(name="production").update(checks={"integrity": {}, **LENIENT})
    version = world.add_version("wide", many_groups(1000, rows_each=1))
    request = world.request(version=version.version)
    assert request["status"] == "awaiting_approval", request
    run = CheckRun.objects.get(request_id=request["id"], name="fairness")
    assert len(run.results["features"]["group"]["groups"]) == 1000
    event = AuditEvent.objects.get(action="check.passed", object_id=str(run.pk))
    text = canonical(run.results).encode()
    assert len(text) > settings.CHECK_RESULTS_INLINE_BYTES
    assert "results" not in event.data
    assert event.data["results_sha256"] == hashlib.sha256(text).hexdigest()
    assert event.data["results_bytes"] == len(text)
    assert len(canonical(event.data)) < 1000

    # small results stay in the event, whole
    integrity = CheckRun.objects.get(request_id=request["id"], name="integrity")
    small = AuditEvent.objects.get(action="check.unverified", object_id=str(integrity.pk))
    assert small.data["results"] == integrity.results
