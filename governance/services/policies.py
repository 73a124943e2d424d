"""Promotion policies: created and edited only here, each change audited with before
and after."""

import copy
import hashlib
import json
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from audits.services import record
from governance.checks import validate_policy_checks
from governance.errors import Conflict, InvalidInput
from governance.models import Policy, TargetStage
from governance.roles import ROLES, SERVICE_ROLES
from registry.models import RiskTier

EDITABLE = (
    "name",
    "target_stage",
    "risk_tier",
    "checks",
    "required_approvals",
    "approver_role",
    "approval_valid_for",
)

STAGING_CHECKS: dict[str, dict] = {
    "integrity": {},
    "validation": {"min": {"accuracy": 0.6}, "reported_tolerance": 0.02},
    "fairness": {},
}
PRODUCTION_CHECKS: dict[str, dict] = {
    "integrity": {},
    "validation": {
        "min": {"accuracy": 0.7, "f1": 0.6},
        "max_regression": 0.02,
        "reported_tolerance": 0.02,
    },
    "fairness": {
        "max_demographic_parity_difference": 0.10,
        "min_demographic_parity_ratio": 0.80,
        "max_equalized_odds_difference": 0.10,
        "min_group_size": 30,
    },
}

DEFAULTS: list[dict[str, Any]] = [
    {
        "name": "staging",
        "target_stage": "staging",
        "required_approvals": 0,
        "checks": STAGING_CHECKS,
    },
    {
        "name": "production",
        "target_stage": "production",
        "required_approvals": 1,
        "checks": PRODUCTION_CHECKS,
    },
    {
        "name": "production-high",
        "target_stage": "production",
        "risk_tier": "high",
        "required_approvals": 2,
        "checks": PRODUCTION_CHECKS,
    },
    {
        "name": "production-critical",
        "target_stage": "production",
        "risk_tier": "critical",
        "required_approvals": 2,
        "checks": PRODUCTION_CHECKS,
    },
    {"name": "archive", "target_stage": "archived", "required_approvals": 0, "checks": {}},
]


# Nothing reaches or leaves production on one person's word, whatever a policy says:
# a policy row written before this rule, or edited in the database, is raised to it
# when a request freezes it.
PRODUCTION_MIN_APPROVALS = 1


def minimum_approvals(*, target_stage: str, from_stage: str) -> int:
    """The fewest approvals a request may need: one for any change to production, a
    version brought there or the one there taken out."""
    touches_production = TargetStage.PRODUCTION in (target_stage, from_stage)
    return PRODUCTION_MIN_APPROVALS if touches_production else 0


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "policy_id": policy.pk,
        "name": policy.name,
        "target_stage": policy.target_stage,
        "risk_tier": policy.risk_tier or "any",
        "checks": policy.checks,
        "required_approvals": policy.required_approvals,
        "approver_role": policy.approver_role,
        "approval_valid_for_seconds": int(policy.approval_valid_for.total_seconds()),
    }


def snapshot_digest(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def policy_resolve(*, target_stage: str, risk_tier: str) -> Policy | None:
    """The tier's own policy, else the any-tier one."""
    candidates = {p.risk_tier: p for p in Policy.objects.filter(target_stage=target_stage)}
    return candidates.get(risk_tier) or candidates.get("")


def validate_policy(fields: dict[str, Any]) -> dict[str, list[str]]:
    errors = validate_policy_checks(fields.get("checks", {}))
    if fields.get("target_stage") not in TargetStage.values:
        errors["target_stage"] = [f"One of: {', '.join(TargetStage.values)}."]
    if fields.get("risk_tier", "") not in ["", *RiskTier.values]:
        errors["risk_tier"] = [f"Blank (any) or one of: {', '.join(RiskTier.values)}."]
    role = fields.get("approver_role")
    if role not in ROLES or role in SERVICE_ROLES:
        allowed = ", ".join(r for r in ROLES if r not in SERVICE_ROLES)
        errors["approver_role"] = [f"One of: {allowed}."]
    approvals = fields.get("required_approvals")
    if not isinstance(approvals, int) or not 0 <= approvals <= 10:
        errors["required_approvals"] = ["A whole number from 0 to 10."]
    elif fields.get("target_stage") == TargetStage.PRODUCTION and approvals < 1:
        errors["required_approvals"] = [
            "A production policy needs at least one approval, at every tier."
        ]
    valid_for = fields.get("approval_valid_for")
    if not isinstance(valid_for, timedelta) or valid_for <= timedelta(0):
        errors["approval_valid_for"] = ["A positive duration."]
    if not str(fields.get("name") or "").strip():
        errors["name"] = ["Required."]
    return errors


def _save(actor, policy: Policy, fields: dict[str, Any], *, action: str, before: dict | None):
    errors = validate_policy(fields)
    if errors:
        raise InvalidInput("The policy is not valid.", errors=errors)
    for key, value in fields.items():
        setattr(policy, key, value)
    try:
        with transaction.atomic():
            policy.save()
            after = policy_snapshot(policy)
            data: dict[str, Any] = {"after": after, "digest": snapshot_digest(after)}
            if before is not None:
                data["before"] = before
            record(actor=actor, action=action, obj=policy, object_type="policy", data=data)
    except IntegrityError as exc:
        raise Conflict(
            "A policy with this name, or for this stage and tier, already exists."
        ) from exc
    return policy


def policy_create(*, actor: AbstractBaseUser | None, **fields: Any) -> Policy:
    fields = {
        "risk_tier": "",
        "checks": {},
        "approver_role": "reviewer",
        "approval_valid_for": timedelta(days=7),
        **fields,
    }
    return _save(actor, Policy(), fields, action="policy.created", before=None)


def policy_update(*, actor: AbstractBaseUser | None, policy: Policy, **changes: Any) -> Policy:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput("Unknown policy fields.", errors={f: ["Unknown."] for f in unknown})
    with transaction.atomic():
        locked = Policy.objects.select_for_update().get(pk=policy.pk)
        before = policy_snapshot(locked)
        fields = {key: getattr(locked, key) for key in EDITABLE} | changes
        if all(getattr(locked, key) == value for key, value in fields.items()):
            return locked
        return _save(actor, locked, fields, action="policy.updated", before=before)


def policies_setup(*, actor: AbstractBaseUser | None = None) -> list[str]:
    """Install the default policies that are missing; never overwrite an edited one."""
    created = []
    for default in DEFAULTS:
        exists = Policy.objects.filter(
            target_stage=default["target_stage"], risk_tier=default.get("risk_tier", "")
        ).exists()
        if not exists and not Policy.objects.filter(name=default["name"]).exists():
            policy_create(actor=actor, **copy.deepcopy(default))
            created.append(default["name"])
    return created
