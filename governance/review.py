"""What the review screens show: the queue's rows and one request's evidence.

Each read here costs a fixed number of queries, whatever the number of requests in the
queue, checks in a round or groups in a fairness result: figures come from the check
runs' stored results, never from one query per row."""

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from audits.models import AuditEvent
from governance.charts import fairness_chart, group_order
from governance.models import Approval, CheckRun, Decision, PromotionRequest, Status
from governance.roles import REVIEWER
from governance.services.policies import policy_snapshot, snapshot_digest
from governance.services.separation_of_duties import require_approver
from registry.admin import render_card
from registry.errors import ServiceError
from registry.models import ModelVersion, Stage

# Which way is better, for the metrics whose direction is known; any other metric is
# shown with its difference but not judged.
HIGHER_IS_BETTER = {
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "auc",
    "average_precision",
    "r2",
}
LOWER_IS_BETTER = {"loss", "log_loss", "mse", "rmse", "mae", "brier", "error_rate"}


def queue_queryset(queryset: QuerySet[PromotionRequest]) -> QuerySet[PromotionRequest]:
    """The queue's rows with what their columns read: three queries for any page size."""
    now = timezone.now()
    return queryset.select_related("model", "version", "requested_by").prefetch_related(
        Prefetch(
            "check_runs",
            queryset=CheckRun.objects.filter(round=F("request__check_round")).order_by("name"),
            to_attr="current_checks",
        ),
        Prefetch(
            "approvals",
            queryset=Approval.objects.filter(decision=Decision.APPROVED, expires_at__gt=now),
            to_attr="counted_approvals",
        ),
    )


def user_roles(user: AbstractBaseUser) -> set[str]:
    cached = getattr(user, "_modelgov_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._modelgov_roles = cached
    return cached


def reviews_by_default(user: AbstractBaseUser) -> bool:
    """Whether the queue opens on "awaiting my review" for this user."""
    return REVIEWER in user_roles(user)


def request_for_review(request_id: int) -> PromotionRequest | None:
    return (
        PromotionRequest.objects.filter(pk=request_id)
        .select_related("model", "version", "version__created_by", "requested_by", "policy")
        .prefetch_related(
            Prefetch("approvals", queryset=Approval.objects.select_related("reviewer")),
            Prefetch("check_runs", queryset=CheckRun.objects.order_by("-round", "name")),
        )
        .first()
    )


@dataclass
class MetricRow:
    name: str
    value: float | None
    production: float | None
    difference: float | None
    worse: bool | None


def _numbers(figures: Any) -> dict[str, float]:
    if not isinstance(figures, dict):
        return {}
    return {
        str(name): float(value)
        for name, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _is_worse(name: str, difference: float) -> bool | None:
    key = name.lower()
    if key in HIGHER_IS_BETTER:
        return difference < 0
    if key in LOWER_IS_BETTER:
        return difference > 0
    return None


def metrics_against_production(
    request: PromotionRequest, validation: CheckRun | None, production: ModelVersion | None
) -> dict[str, Any]:
    """This version's figures beside production's, with the difference.

    The validation check's figures come first: both versions measured the same way,
    on their own evaluation sets, when the check ran. Without them, the figures CI
    reported at registration, for both versions."""
    results = validation.results if validation is not None else {}
    computed = _numbers(results.get("computed"))
    stored = results.get("production") or {}
    if computed and stored.get("metrics"):
        ours, theirs = computed, _numbers(stored["metrics"])
        against = stored.get("version")
        source = "computed by the validation check on each version's evaluation set"
    else:
        ours = _numbers(request.version.metrics)
        theirs = _numbers(production.metrics) if production is not None else {}
        against = production.version if production is not None else None
        source = "as reported by CI when each version was registered"
        if computed and production is None:
            ours = computed
            source = "computed by the validation check on this version's evaluation set"
    rows = []
    for name in [*ours, *(n for n in theirs if n not in ours)]:
        value, other = ours.get(name), theirs.get(name)
        difference = value - other if value is not None and other is not None else None
        worse = _is_worse(name, difference) if difference is not None else None
        rows.append(MetricRow(name, value, other, difference, worse))
    return {"rows": rows, "production_version": against, "source": source}


def timeline(request: PromotionRequest, runs: list[CheckRun]) -> QuerySet[AuditEvent]:
    """The request's own events, its checks' events and the stage moves it caused, in
    chain order: one query."""
    return AuditEvent.objects.filter(
        Q(object_type="promotion_request", object_id=str(request.pk))
        | Q(object_type="check_run", object_id__in=[str(run.pk) for run in runs])
        | Q(
            action="model_version.stage_changed",
            model=request.model.name,
            data__promotion_request=request.pk,
        )
    ).order_by("seq")


def event_line(event: AuditEvent) -> str:
    """One sentence of what the event says, beyond its action name."""
    data = event.data or {}
    if event.object_type == "check_run":
        text = f"{data.get('check', '')} (round {data.get('round', '?')})"
        extra = data.get("summary") or data.get("reason")
        return f"{text}: {extra}" if extra else text
    if event.action == "model_version.stage_changed":
        return f"v{data.get('version')}: {data.get('from')} → {data.get('to')}. " + (
            data.get("reason") or ""
        )
    if event.action == "promotion.requested":
        return data.get("justification") or "No justification given."
    parts = []
    if data.get("from") and data.get("to"):
        parts.append(f"{data['from']} → {data['to']}.")
    if "valid_approvals" in data:
        parts.append(f"{data['valid_approvals']} of {data.get('required_approvals')} approvals.")
    if data.get("comment"):
        parts.append(f"“{data['comment']}”")
    elif data.get("reason"):
        parts.append(str(data["reason"]))
    return " ".join(parts)


def decision_blocker(user: AbstractBaseUser, request: PromotionRequest) -> str | None:
    """Why `user` cannot decide this request now, or None when they can.

    The rights are asked every time, whatever the status, so the page costs the same
    queries before and after a decision."""
    try:
        require_approver(user, request)
        refused = None
    except ServiceError as exc:
        refused = exc.detail
    if request.status != Status.AWAITING_APPROVAL:
        status = request.status.replace("_", " ")
        return f"This request is {status}; there is nothing to decide."
    if refused:
        return refused
    now = timezone.now()
    for approval in request.approvals.all():
        if (
            approval.reviewer_id == user.pk
            and approval.decision == Decision.APPROVED
            and approval.expires_at
            and approval.expires_at > now
        ):
            return "You have approved this request; it waits for another reviewer."
    return None


# (label, figure, the threshold setting that bounds it, which side passes)
DISPARITIES = (
    (
        "Demographic parity difference",
        "demographic_parity_difference",
        "max_demographic_parity_difference",
        "≤",
    ),
    ("Demographic parity ratio", "demographic_parity_ratio", "min_demographic_parity_ratio", "≥"),
    (
        "Equalized odds difference",
        "equalized_odds_difference",
        "max_equalized_odds_difference",
        "≤",
    ),
)


def _limit(feature, limits, label, key, limit_key, op) -> dict[str, Any]:
    value, limit = feature.get(key), limits.get(limit_key)
    ok = None
    if isinstance(value, int | float) and isinstance(limit, int | float):
        ok = value <= limit if op == "≤" else value >= limit
    return {"label": label, "value": value, "op": op, "limit": limit, "ok": ok}


def _fairness(run: CheckRun) -> list[dict[str, Any]]:
    results = run.results or {}
    limits = results.get("thresholds") or {}
    features = []
    for name, feature in (results.get("features") or {}).items():
        features.append(
            {
                "name": name,
                "chart": fairness_chart(name, feature, limits),
                "groups": [
                    {"name": group, "small": group in feature.get("small_groups", []), **row}
                    for group, row in sorted(
                        feature.get("groups", {}).items(), key=lambda item: group_order(item[0])
                    )
                ],
                "disparities": [_limit(feature, limits, *spec) for spec in DISPARITIES],
            }
        )
    return features


def _validation(run: CheckRun) -> list[dict[str, Any]]:
    results = run.results or {}
    computed = _numbers(results.get("computed"))
    reported = _numbers(results.get("reported"))
    minimums = _numbers(results.get("minimums"))
    production = _numbers((results.get("production") or {}).get("metrics"))
    names = [*computed, *(n for n in minimums if n not in computed)]
    return [
        {
            "name": name,
            "computed": computed.get(name),
            "reported": reported.get(name),
            "minimum": minimums.get(name),
            "below_minimum": name in minimums
            and (name not in computed or computed[name] < minimums[name]),
            "production": production.get(name),
        }
        for name in names
    ]


def check_view(run: CheckRun) -> dict[str, Any]:
    results = run.results or {}
    view: dict[str, Any] = {
        "run": run,
        "findings": results.get("findings") or [],
        "warnings": results.get("warnings") or [],
        "raw": json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False),
        "facts": [],
    }
    if run.name == "fairness":
        view["features"] = _fairness(run)
    elif run.name == "validation":
        view["metrics"] = _validation(run)
    if "rows" in results:
        view["facts"].append(("Evaluation rows", results["rows"]))
    if results.get("evaluation_sha256"):
        view["facts"].append(("Evaluation set SHA-256", results["evaluation_sha256"]))
    if run.name == "integrity":
        for key in ("artifact_uri", "expected_sha256", "actual_sha256", "verified_content"):
            if key in results:
                view["facts"].append((key.replace("_", " ").capitalize(), results[key]))
    return view


LINEAGE = (
    ("dataset_uri", "Dataset"),
    ("dataset_sha256", "Dataset SHA-256"),
    ("code_repo", "Code repository"),
    ("code_commit", "Code commit"),
    ("run_id", "Training run"),
)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int) or seconds <= 0:
        return "—"
    days, rest = divmod(seconds, 86400)
    hours = rest // 3600
    if days and not hours:
        return f"{days} day{'s' if days != 1 else ''}"
    if days:
        return f"{days} d {hours} h"
    return f"{seconds // 3600} h {(seconds % 3600) // 60} min"


def decision_evidence(request: PromotionRequest, user: AbstractBaseUser) -> dict[str, Any]:
    """Everything the decision page shows, for a request loaded by request_for_review."""
    runs = list(request.check_runs.all())
    current = sorted((r for r in runs if r.round == request.check_round), key=lambda r: r.name)
    earlier = [r for r in runs if r.round != request.check_round]
    version = request.version
    production = (
        ModelVersion.objects.filter(model_id=request.model_id, stage=Stage.PRODUCTION)
        .exclude(pk=version.pk)
        .first()
    )
    validation = next((r for r in current if r.name == "validation"), None)
    approvals = list(request.approvals.all())
    now = timezone.now()
    counted = [
        a
        for a in approvals
        if a.decision == Decision.APPROVED and a.expires_at is not None and a.expires_at > now
    ]
    snapshot = request.policy_snapshot or {}
    if request.policy is None:
        policy_note = "The policy this request was made under has since been removed."
    elif snapshot_digest(policy_snapshot(request.policy)) != request.policy_digest:
        policy_note = (
            f"The policy “{request.policy.name}” has been edited since; "
            "this request is still decided by the rule frozen here."
        )
    else:
        policy_note = ""
    blocker = decision_blocker(user, request)
    return {
        "promotion": request,
        "version": version,
        "model": request.model,
        "model_card": render_card(request.model.card),
        "version_card": render_card(version.card) if version.card else None,
        "lineage": [(label, (version.lineage or {}).get(key)) for key, label in LINEAGE],
        "checks": [check_view(run) for run in current],
        "earlier_checks": earlier,
        "comparison": metrics_against_production(request, validation, production),
        "production": production,
        "approvals": approvals,
        "approvals_counted": len(counted),
        "approvals_needed": max(0, request.required_approvals - len(counted)),
        "counted_ids": {a.pk for a in counted},
        "policy": snapshot,
        "policy_checks": sorted((snapshot.get("checks") or {}).items()),
        "policy_valid_for": _duration(snapshot.get("approval_valid_for_seconds")),
        "policy_note": policy_note,
        "can_decide": blocker is None,
        "blocker": blocker,
        "events": [(event, event_line(event)) for event in timeline(request, runs)],
    }
