import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest

from audits.models import AuditEvent
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def fraud(make_user):
    owner = make_user("olivia", "owner")
    model = make_model(
        owner,
        "fraud",
        card={"intended_use": "Flag <script>card</script> fraud", "contacts": ["a@example.com"]},
    )
    make_version(make_user("ci-bot", "ci"), model, seed="v1")
    return model


def login(client, username):
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD)
    return client


def test_the_owner_edits_a_model_in_the_admin_and_the_edit_is_audited(client, fraud):
    login(client, "olivia")
    page = client.get(f"/admin/registry/registeredmodel/{fraud.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Intended use" in html
    assert "&lt;script&gt;card&lt;/script&gt;" in html  # the card is rendered, escaped
    assert "a@example.com" in html
    response = client.post(
        f"/admin/registry/registeredmodel/{fraud.pk}/change/",
        {
            "description": "edited in admin",
            "risk_tier": "high",
            "card": '{"intended_use": "Flag fraud"}',
            "tags": "{}",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
            "versions-0-id": str(fraud.versions.get().pk),
            "versions-0-model": str(fraud.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.filter(action="registered_model.updated").get()
    assert event.actor == "olivia"
    assert set(event.data["changes"]) == {"description", "risk_tier", "card"}


def test_an_unknown_card_section_is_refused_in_the_admin(client, fraud):
    login(client, "olivia")
    before = AuditEvent.objects.count()
    response = client.post(
        f"/admin/registry/registeredmodel/{fraud.pk}/change/",
        {"description": "", "risk_tier": "medium", "card": '{"colour": "blue"}', "tags": "{}"},
    )
    assert response.status_code == 200
    assert "Unknown card section" in response.content.decode()
    assert AuditEvent.objects.count() == before


def test_another_owner_cannot_change_the_model_in_the_admin(client, fraud, make_user):
    make_user("oscar", "owner")
    login(client, "oscar")
    assert client.get("/admin/registry/registeredmodel/").status_code == 200
    response = client.post(
        f"/admin/registry/registeredmodel/{fraud.pk}/change/",
        {"description": "hijack", "risk_tier": "low", "card": "{}", "tags": "{}"},
    )
    assert response.status_code == 403
    fraud.refresh_from_db()
    assert fraud.description == ""


def test_the_stage_is_read_only_in_the_admin(client, fraud, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    version = fraud.versions.get()
    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert 'name="stage"' not in page
    client.post(
        f"/admin/registry/modelversion/{version.pk}/change/",
        {"description": "x", "card": "{}", "tags": "{}", "stage": "production"},
    )
    version.refresh_from_db()
    assert (version.stage, version.description) == ("none", "x")


def test_audit_events_are_read_only_even_for_a_superuser(client, fraud):
    User.objects.create_superuser("root", password=PASSWORD)
    login(client, "root")
    event = AuditEvent.objects.first()
    assert client.get("/admin/audits/auditevent/").status_code == 200
    page = client.get(f"/admin/audits/auditevent/{event.pk}/change/").content.decode()
    assert 'type="submit"' not in page or "Save" not in page
    assert client.get("/admin/audits/auditevent/add/").status_code == 403
    assert (
        client.post(f"/admin/audits/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_ci_accounts_cannot_log_into_the_admin(client, fraud):
    client.login(request=HttpRequest(), username="ci-bot", password=PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
