"""The admin's API token screens: an admin cannot make a token for a person (and then
act as them), only for themselves or a ci account; everyone else sees and makes only
their own. Each attempt is made as a browser would, with a session and its CSRF
token."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.test import Client

from audits.context import audit_context
from audits.models import AuditEvent
from governance.models import ApiToken
from governance.services import token_create

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
ADD = "/admin/governance/apitoken/add/"
LIST = "/admin/governance/apitoken/"


def session(username: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD)
    return client


def add_token(client: Client, **fields):
    """GET the add form, then POST it with the CSRF token the page set."""
    page = client.get(ADD)
    assert page.status_code == 200
    csrf = client.cookies["csrftoken"].value
    return client.post(ADD, {"name": "mine", **fields, "csrfmiddlewaretoken": csrf})


def created_events() -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(action="token.created")
        .order_by("seq")
        .values_list("actor", "data__user", "data__expires_at")
    )


@pytest.fixture
def ada(make_user):
    return make_user("ada", "admin")


def test_an_admin_cannot_make_a_token_for_a_reviewer(ada, make_user):
    rita = make_user("rita", "reviewer")
    before = created_events()

    response = add_token(session("ada"), user=rita.pk)

    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors["user"]
    assert not ApiToken.objects.filter(user=rita).exists()
    assert created_events() == before


def test_an_admin_cannot_make_a_token_for_a_superuser(ada):
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)

    response = add_token(session("ada"), user=root.pk)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user"]
    assert not ApiToken.objects.filter(user=root).exists()


def test_the_form_offers_an_admin_only_themselves_and_ci_accounts(ada, make_user):
    make_user("rita", "reviewer")
    make_user("ci-bot", "ci")
    make_user("mixed", "owner", "ci")  # a person, whatever else they hold
    get_user_model().objects.create_superuser("root", password=PASSWORD)

    form = session("ada").get(ADD).context["adminform"].form

    offered = {user.get_username() for user in form.fields["user"].queryset}
    assert offered == {"ada", "ci-bot"}


def test_an_admin_makes_a_token_for_a_ci_account_and_it_is_audited(ada, make_user):
    ci = make_user("ci-bot", "ci")

    response = add_token(session("ada"), user=ci.pk, expires_in_days="30")

    assert response.status_code == 302
    token = ApiToken.objects.get(user=ci)
    assert abs(token.expires_at - token.created_at - timedelta(days=30)) < timedelta(minutes=1)
    [(actor, user, expires_at)] = created_events()
    assert (actor, user) == ("ada", "ci-bot")
    assert expires_at.startswith(f"{token.expires_at:%Y-%m-%dT%H:%M:%S}")


def test_an_admin_makes_a_token_for_themselves(ada):
    assert add_token(session("ada"), user=ada.pk).status_code == 302
    assert ApiToken.objects.filter(user=ada).count() == 1
    assert [event[:2] for event in created_events()] == [("ada", "ada")]


def test_a_reviewer_makes_only_their_own_token_whoever_the_form_names(make_user):
    rita = make_user("rita", "reviewer")
    olivia = make_user("olivia", "owner")
    client = session("rita")
    assert "user" not in client.get(ADD).context["adminform"].form.fields

    response = add_token(client, user=olivia.pk)

    assert response.status_code == 302
    assert list(ApiToken.objects.values_list("user__username", flat=True)) == ["rita"]
    assert ApiToken.objects.get().user == rita


def test_a_person_sees_and_revokes_only_their_own_tokens(make_user):
    rita = make_user("rita", "reviewer")
    olivia = make_user("olivia", "owner")
    with audit_context():
        mine, _ = token_create(actor=None, user=rita, name="rita's")
        theirs, _ = token_create(actor=None, user=olivia, name="olivia's")
    client = session("rita")

    listed = client.get(LIST)
    csrf = client.cookies["csrftoken"].value
    client.post(
        LIST,
        {
            "action": "revoke",
            "_selected_action": [mine.pk, theirs.pk],
            "csrfmiddlewaretoken": csrf,
        },
    )

    assert [t.pk for t in listed.context["cl"].result_list] == [mine.pk]
    assert client.get(f"{LIST}{mine.pk}/change/").status_code == 200
    assert client.get(f"{LIST}{theirs.pk}/change/").status_code == 302  # "does not exist"
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None
    assert theirs.revoked_at is None


def test_an_admin_sees_every_token_with_its_expiry_and_last_use(ada, make_user):
    with audit_context():
        token_create(actor=None, user=make_user("rita", "reviewer"))

    page = session("ada").get(LIST)

    assert len(page.context["cl"].result_list) == 1
    content = page.content.decode()
    assert "column-expires_at" in content and "column-last_used_at" in content
