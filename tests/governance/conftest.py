import pytest

from audits.models import AuditEvent
from tests.factories import make_evaluation, make_model, make_version


class World:
    """Users of every role, a medium-risk model with two versions, and their clients."""

    def __init__(self, make_user, api_for, capture):
        self.capture = capture
        self.users = {
            "olivia": make_user("olivia", "owner"),
            "ci": make_user("ci-bot", "ci"),
            "rita": make_user("rita", "reviewer"),
            "raj": make_user("raj", "reviewer"),
            "carla": make_user("carla", "compliance"),
            "ada": make_user("ada", "admin"),
            "otto": make_user("otto", "owner", "reviewer"),
        }
        self.api = {name: api_for(user) for name, user in self.users.items()}
        self.model = make_model(self.users["olivia"], "fraud")
        self.versions = [self.add_version(f"v{i}") for i in (1, 2)]

    def add_version(self, seed, frame=None, **fields):
        """A version of `fraud` with an evaluation set (fair and accurate by default)."""
        version = make_version(self.users["ci"], self.model, seed=seed, **fields)
        make_evaluation(self.users["ci"], version, frame)
        return version

    def call(self, who: str, method: str, path: str, data=None, *, run_tasks: bool = True):
        """An HTTP call whose on-commit work (the checks) runs, as it would in production."""
        client = self.api[who]
        if not run_tasks:
            return getattr(client, method)(path, data, format="json")
        with self.capture(execute=True):
            return getattr(client, method)(path, data, format="json")

    def request(
        self,
        who: str = "ci",
        version: int = 1,
        target: str = "production",
        model: str = "fraud",
        **extra,
    ):
        body = {"model": model, "version": version, "target_stage": target, **extra}
        run_tasks = extra.pop("run_tasks", True)
        body.pop("run_tasks", None)
        response = self.call(who, "post", "/api/v1/promotions/", body, run_tasks=run_tasks)
        assert response.status_code == 201, response.content
        # Re-read: the checks ran on commit, after the response was made.
        return self.get(response.json()["id"])

    def act(self, who: str, request_id: int, action: str, comment: str | None = None):
        data = {"comment": comment} if comment is not None else {}
        return self.call(who, "post", f"/api/v1/promotions/{request_id}/{action}/", data)

    def get(self, request_id: int, who: str = "carla"):
        return self.api[who].get(f"/api/v1/promotions/{request_id}/").json()

    @staticmethod
    def mark() -> int:
        return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    @staticmethod
    def events_since(seq: int) -> list[tuple]:
        return [
            (e.action, e.data.get("from"), e.data.get("to"))
            for e in AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
        ]


@pytest.fixture
def world(make_user, api_for, django_capture_on_commit_callbacks):
    return World(make_user, api_for, django_capture_on_commit_callbacks)
