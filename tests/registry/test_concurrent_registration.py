import threading

import pytest
from django.db import connection

from audits.selectors import verify_stored_chain
from registry.models import ModelVersion
from tests.factories import make_model, version_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 20


def _parallel(clients, send):
    start = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def run(index):
        try:
            start.wait()
            answers[index] = send(index, clients[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_20_parallel_registrations_give_versions_1_to_20(make_user, api_for):
    make_model(make_user("olivia", "owner"), "fraud")
    ci = make_user("ci-bot", "ci")
    clients = [api_for(ci) for _ in range(CLIENTS)]

    answers = _parallel(
        clients,
        lambda i, api: api.post(
            "/api/v1/models/fraud/versions/", version_payload(f"p{i}"), format="json"
        ),
    )

    assert sorted(a.status_code for a in answers) == [201] * CLIENTS
    assert sorted(a.json()["version"] for a in answers) == list(range(1, CLIENTS + 1))
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == list(
        range(1, CLIENTS + 1)
    )
    assert verify_stored_chain().ok


def test_20_parallel_retries_of_one_artifact_make_one_version(make_user, api_for):
    make_model(make_user("olivia", "owner"), "fraud")
    ci = make_user("ci-bot", "ci")
    clients = [api_for(ci) for _ in range(CLIENTS)]

    answers = _parallel(
        clients,
        lambda i, api: api.post(
            "/api/v1/models/fraud/versions/", version_payload("same"), format="json"
        ),
    )

    assert sorted(a.status_code for a in answers) == [200] * (CLIENTS - 1) + [201]
    assert {a.json()["version"] for a in answers} == {1}
    assert ModelVersion.objects.count() == 1
