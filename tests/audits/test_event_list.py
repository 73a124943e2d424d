"""The event list: the contract's page shape, keyset pages by seq, exact counts."""

import pytest

from audits.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "http://testserver/api/v1/audit/events/"


def seqs(body) -> list[int]:
    return [event["seq"] for event in body["results"]]


def test_pages_read_forward_and_back_by_seq(known_log, reader):
    first = reader.get("/api/v1/audit/events/?page_size=2").json()
    assert first == {
        "count": 5,
        "next": f"{URL}?after=2&page_size=2",
        "previous": None,
        "results": known_log[:2],
    }
    second = reader.get(first["next"]).json()
    assert (seqs(second), second["next"], second["previous"]) == (
        [3, 4],
        f"{URL}?after=4&page_size=2",
        f"{URL}?before=3&page_size=2",
    )
    last = reader.get(second["next"]).json()
    assert (seqs(last), last["next"], last["previous"]) == (
        [5],
        None,
        f"{URL}?before=5&page_size=2",
    )
    back = reader.get(last["previous"]).json()
    assert (seqs(back), back["next"], back["previous"]) == (
        [3, 4],
        f"{URL}?after=4&page_size=2",
        f"{URL}?before=3&page_size=2",
    )
    start = reader.get(back["previous"]).json()
    assert (seqs(start), start["next"], start["previous"]) == (
        [1, 2],
        f"{URL}?after=2&page_size=2",
        None,
    )


def test_following_next_visits_every_filtered_event_once_in_order(known_log, reader):
    url, seen, counts = "/api/v1/audit/events/?page_size=1&model=fraud", [], set()
    while url:
        body = reader.get(url).json()
        seen += seqs(body)
        counts.add(body["count"])
        url = body["next"]
    assert seen == [1, 2, 3, 4]
    assert counts == {4}


def test_filters_are_kept_in_the_links(known_log, reader):
    body = reader.get("/api/v1/audit/events/?actor=olivia&page_size=1").json()
    assert body["next"] == f"{URL}?actor=olivia&after=1&page_size=1"
    assert seqs(reader.get(body["next"]).json()) == [5]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=0", "page_size"),
        ("page_size=1001", "page_size"),
        ("page_size=ten", "page_size"),
        ("after=-1", "after"),
        ("before=0", "before"),
        ("after=1&before=4", "before"),
    ],
)
def test_bad_cursors_and_sizes_are_400s(known_log, reader, query, field):
    response = reader.get(f"/api/v1/audit/events/?{query}")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_a_page_costs_the_same_queries_whatever_the_log_holds(
    known_log, make_user, api_for, django_assert_num_queries
):
    api = api_for(make_user("carla-2", "compliance"))
    # the token with its user, roles and permissions, its first use recorded, the
    # count, the page, and whether events lie before the cursor
    with django_assert_num_queries(5):
        body = api.get("/api/v1/audit/events/?page_size=3&after=3").json()
    assert body["count"] == AuditEvent.objects.count()
    assert seqs(body) == [4, 5, 6]
