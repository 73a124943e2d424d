"""Parallel decisions on real PostgreSQL: the model's row lock lets one win."""

import threading

import pytest
from django.db import connection

from audits.models import AuditEvent
from audits.selectors import verify_stored_chain
from governance.models import PromotionRequest
from registry.models import ModelVersion

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def parallel(calls):
    start = threading.Barrier(len(calls))
    answers = [None] * len(calls)

    def run(index, call):
        try:
            start.wait()
            answers[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _approve(world, who, request_id):
    return lambda: world.api[who].post(
        f"/api/v1/promotions/{request_id}/approve/", {}, format="json"
    )


def test_three_reviewers_approving_one_request_promote_it_once(world, make_user, api_for):
    world.api["rex"] = api_for(make_user("rex", "reviewer"))
    request = world.request(run_tasks=False)
    assert world.get(request["id"])["status"] == "awaiting_approval"

    answers = parallel([_approve(world, who, request["id"]) for who in ("rita", "raj", "rex")])

    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    assert PromotionRequest.objects.get(pk=request["id"]).status == "promoted"
    assert list(
        ModelVersion.objects.filter(stage="production").values_list("version", flat=True)
    ) == [1]
    assert AuditEvent.objects.filter(action="promotion.promoted").count() == 1
    assert AuditEvent.objects.filter(action="promotion.approved").count() == 1
    assert verify_stored_chain().ok


def test_two_versions_approved_for_production_in_parallel_leave_one_in_production(world):
    first = world.request(version=1, run_tasks=False)
    second = world.request(version=2, run_tasks=False)
    assert {world.get(r["id"])["status"] for r in (first, second)} == {"awaiting_approval"}

    answers = parallel([_approve(world, "rita", first["id"]), _approve(world, "raj", second["id"])])

    assert sorted(a.status_code for a in answers) == [200, 409]
    winner_answer = next(a for a in answers if a.status_code == 200).json()
    statuses = {r.pk: r for r in PromotionRequest.objects.all()}
    winner = statuses[winner_answer["id"]]
    loser = statuses[({first["id"], second["id"]} - {winner.pk}).pop()]
    assert (winner.status, loser.status) == ("promoted", "cancelled")
    assert loser.status_reason.startswith(f"Superseded: request #{winner.pk}")
    assert ModelVersion.objects.filter(stage="production").count() == 1
    assert ModelVersion.objects.get(stage="production").pk == winner.version_id
    cancelled = AuditEvent.objects.get(action="promotion.cancelled")
    assert (cancelled.object_id, cancelled.actor, cancelled.data["caused_by"]) == (
        str(loser.pk),
        "system",
        winner.pk,
    )
    assert AuditEvent.objects.filter(action="promotion.promoted").count() == 1
    assert verify_stored_chain().ok
