"""Validation of a gate's settings, shared by the gates."""

from typing import Any


def number_errors(
    settings: dict[str, Any], allowed: dict[str, tuple[float, float | None]]
) -> dict[str, list[str]]:
    """Each key must be one of `allowed`, holding a number (or null) in its range."""
    errors: dict[str, list[str]] = {}
    for key, value in settings.items():
        if key not in allowed:
            errors[key] = [f"Unknown setting. Known: {', '.join(sorted(allowed))}."]
            continue
        low, high = allowed[key]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[key] = ["Expected a number or null."]
        elif value < low or (high is not None and value > high):
            errors[key] = [
                f"Expected a number from {low} to {high if high is not None else 'any'}."
            ]
    return errors
