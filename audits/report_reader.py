"""The audit report's reader: the models, versions and promotion requests that the
exported events tell of, read from those events alone (audits knows no other app).

Each model's card comes from registered_model.created / .updated, its versions from
model_version.registered, their stage history from model_version.stage_changed, and
promotion requests with their checks, figures and approvals from promotion.* and
check.* events.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Version:
    number: int
    registered_at: str = ""
    registered_by: str = ""
    artifact_sha256: str = ""
    artifact_uri: str = ""
    framework: str = ""
    metrics: dict = field(default_factory=dict)
    stages: list[tuple[str, str, str, Any, str]] = field(default_factory=list)


@dataclass
class Check:
    name: str
    round: Any
    verdict: str = "queued"
    summary: str = ""
    results: Any = None
    # Results too large for the event are kept by the check run; the event has their
    # digest and size.
    results_sha256: str = ""
    results_bytes: Any = None
    started_at: str = ""
    finished_at: str = ""


@dataclass
class Decision:
    reviewer: str
    decision: str
    at: str
    comment: str


@dataclass
class Request:
    id: Any
    version: Any = None
    target_stage: str = ""
    from_stage: str = ""
    requested_by: str = ""
    requested_at: str = ""
    justification: str = ""
    policy_digest: str = ""
    required_approvals: Any = None
    outcome: str = "checking"
    outcome_at: str = ""
    checks: dict[tuple, Check] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    history: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class Model:
    name: str
    created_at: str = ""
    created_by: str = ""
    owner: str = ""
    description: str = ""
    risk_tier: str = ""
    card: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    versions: dict[int, Version] = field(default_factory=dict)
    requests: dict[Any, Request] = field(default_factory=dict)

    def version(self, number) -> Version:
        return self.versions.setdefault(number, Version(number))

    def request(self, request_id) -> Request:
        return self.requests.setdefault(request_id, Request(request_id))


_FINAL = {
    "promotion.promoted": "promoted",
    "promotion.rejected": "rejected",
    "promotion.cancelled": "cancelled",
    "promotion.checks_failed": "checks_failed",
    "promotion.checks_passed": "awaiting_approval",
    "promotion.checks_rerun": "checking",
}


def collect(events: Iterable[dict]) -> dict[str, Model]:
    """The models, versions and requests the events tell of, by model name."""
    models: dict[str, Model] = {}
    for event in events:
        name = event.get("model")
        if not name:
            continue
        model = models.setdefault(name, Model(name))
        _apply(model, event)
    return models


def _apply(model: Model, event: dict) -> None:
    action, data, at, actor = event["action"], event["data"], event["occurred_at"], event["actor"]
    if action == "registered_model.created":
        model.created_at, model.created_by = at, actor
        model.owner = data.get("owner", actor)
        model.description = data.get("description", "")
        model.risk_tier = data.get("risk_tier", "")
        model.card = data.get("card") or {}
        model.tags = data.get("tags") or {}
    elif action == "registered_model.updated":
        for name, change in (data.get("changes") or {}).items():
            if name in ("description", "risk_tier", "card", "tags"):
                setattr(model, name, change.get("after"))
    elif action == "model_version.registered":
        version = model.version(data.get("version"))
        version.registered_at, version.registered_by = at, actor
        version.artifact_sha256 = data.get("artifact_sha256", "")
        version.artifact_uri = data.get("artifact_uri", "")
        version.framework = data.get("framework", "")
        version.metrics = data.get("metrics") or {}
    elif action == "model_version.stage_changed":
        model.version(data.get("version")).stages.append(
            (at, data.get("from", ""), data.get("to", ""), data.get("promotion_request"), actor)
        )
    elif action.startswith("check."):
        request = model.request(data.get("promotion_request"))
        key = (data.get("round"), data.get("check"))
        check = request.checks.setdefault(key, Check(data.get("check", ""), data.get("round")))
        if action == "check.started":
            check.verdict, check.started_at = "running", at
        else:
            check.verdict, check.finished_at = action.removeprefix("check."), at
            check.summary, check.results = data.get("summary", ""), data.get("results")
            check.results_sha256 = data.get("results_sha256", "")
            check.results_bytes = data.get("results_bytes")
    elif action.startswith("promotion."):
        request = model.request(data.get("promotion_request"))
        request.version = data.get("version", request.version)
        request.target_stage = data.get("target_stage", request.target_stage)
        request.policy_digest = data.get("policy_digest", request.policy_digest)
        request.history.append((at, action, actor, data.get("reason") or ""))
        if action == "promotion.requested":
            request.requested_by, request.requested_at = actor, at
            request.from_stage = data.get("from_stage", "")
            request.justification = data.get("justification", "")
            request.required_approvals = (data.get("policy") or {}).get("required_approvals")
        elif action == "promotion.approved":
            request.decisions.append(Decision(actor, "approved", at, data.get("comment", "")))
        elif action == "promotion.rejected":
            request.decisions.append(Decision(actor, "rejected", at, data.get("comment", "")))
        if action in _FINAL:
            outcome = _FINAL[action]
            if action == "promotion.checks_passed" and data.get("to") == "promoted":
                outcome = "promoted"
            request.outcome, request.outcome_at = outcome, at
