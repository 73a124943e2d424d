"""The promotion gates. Each module is a plain function of a version, its evaluation
data and the settings from the request's frozen policy, returning a CheckResult:

    run(*, version, evaluation, settings) -> CheckResult
    validate_settings(settings) -> {field: [messages]}
"""

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

PASSED, UNVERIFIED, FAILED, ERROR = "passed", "unverified", "failed", "error"


@dataclass
class CheckResult:
    status: str
    summary: str
    results: dict[str, Any] = field(default_factory=dict)


def registry() -> dict[str, ModuleType]:
    from governance.checks import fairness, integrity, validation

    return {"integrity": integrity, "validation": validation, "fairness": fairness}


def validate_policy_checks(checks: Any) -> dict[str, list[str]]:
    """Errors for a policy's `checks` object: unknown names, bad settings."""
    if not isinstance(checks, dict):
        return {"checks": ["Expected an object of check name -> settings."]}
    known = registry()
    errors: dict[str, list[str]] = {}
    for name, settings in checks.items():
        if name not in known:
            errors[f"checks.{name}"] = [f"Unknown check. Known: {', '.join(sorted(known))}."]
        elif not isinstance(settings, dict):
            errors[f"checks.{name}"] = ["Expected an object of settings."]
        else:
            for key, messages in known[name].validate_settings(settings).items():
                errors[f"checks.{name}.{key}"] = messages
    return errors
