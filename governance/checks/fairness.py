"""Fairness: per sensitive feature, with fairlearn, each group's selection rate, true
and false positive rates and size; demographic parity difference and ratio, and the
equalized odds difference, held to the policy's limits.

Defaults: difference at most 0.10, ratio at least 0.80 (the four-fifths rule). A group
smaller than `min_group_size` is reported as a warning: its rates are too noisy to
judge, and a silent pass would hide that. A feature with more than `max_groups` groups
ends the gate in `error` before any rate is computed."""

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

from governance.checks import ERROR, FAILED, PASSED, CheckResult
from governance.checks._settings import number_errors
from registry.evaluation import load_frame

DEFAULTS: dict[str, Any] = {
    "max_demographic_parity_difference": 0.10,
    "min_demographic_parity_ratio": 0.80,
    "max_equalized_odds_difference": 0.10,
    "min_group_size": 30,
    # More groups than this is a column that is not a sensitive feature (an id, a free
    # text field): the gate would spend minutes and write a result nobody can review.
    "max_groups": 1000,
}
RANGES = {
    "max_demographic_parity_difference": (0, 1),
    "min_demographic_parity_ratio": (0, 1),
    "max_equalized_odds_difference": (0, 1),
    "min_group_size": (0, None),
    "max_groups": (1, None),
}
GROUP_METRICS = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
}


def validate_settings(settings: dict[str, Any]) -> dict[str, list[str]]:
    return number_errors(settings, RANGES)


def metric_frame(y_true, y_pred, groups) -> MetricFrame:
    return MetricFrame(
        metrics=GROUP_METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=groups
    )


def figures(frame: MetricFrame, groups: pd.Series) -> dict[str, Any]:
    """The group table and the disparities, derived from one MetricFrame.

    The same definitions as fairlearn's demographic_parity_difference/_ratio and
    equalized_odds_difference (method "between_groups"), without computing the
    group table three more times."""
    table = frame.by_group
    # Group sizes from pandas directly: fairlearn's `count` costs a full pass per group.
    sizes = groups.value_counts()
    rates = table["selection_rate"].astype(float)
    tpr = table["true_positive_rate"].astype(float)
    fpr = table["false_positive_rate"].astype(float)
    top = rates.max()
    return {
        "groups": {
            str(group): {
                "selection_rate": float(row["selection_rate"]),
                "true_positive_rate": float(row["true_positive_rate"]),
                "false_positive_rate": float(row["false_positive_rate"]),
                "count": int(sizes[group]),
            }
            for group, row in table.iterrows()
        },
        "demographic_parity_difference": float(top - rates.min()),
        "demographic_parity_ratio": float(rates.min() / top) if top > 0 else 1.0,
        "equalized_odds_difference": float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min())),
    }


def run(*, version, evaluation=None, settings: dict[str, Any]) -> CheckResult:
    limits = DEFAULTS | settings
    if evaluation is None:
        return CheckResult(ERROR, f"Version {version.version} has no evaluation data uploaded.")
    if not evaluation.sensitive_features:
        return CheckResult(ERROR, "The evaluation data names no sensitive features.")
    data = load_frame(evaluation)
    y_true = data[evaluation.label_column].to_numpy()
    y_pred = data[evaluation.prediction_column].to_numpy()
    if not set(np.unique(np.concatenate([y_true, y_pred]))) <= {0.0, 1.0}:
        return CheckResult(ERROR, "Fairness rates need binary labels and predictions (0 or 1).")

    findings: list[str] = []
    warnings: list[str] = []
    features: dict[str, Any] = {}
    for feature in evaluation.sensitive_features:
        groups = data[feature].fillna("(missing)")
        count = groups.nunique()
        if count > limits["max_groups"]:
            return CheckResult(
                ERROR,
                f"{feature} has {count} groups; the policy allows at most "
                f"{limits['max_groups']} per sensitive feature (checks.fairness.max_groups).",
                {"feature": feature, "groups": int(count), "max_groups": limits["max_groups"]},
            )
        result = figures(metric_frame(y_true, y_pred, groups), groups)
        small = sorted(
            g for g, row in result["groups"].items() if row["count"] < limits["min_group_size"]
        )
        result["small_groups"] = small
        features[feature] = result
        if small:
            warnings.append(
                f"{feature}: groups {', '.join(small)} have fewer than "
                f"{limits['min_group_size']} rows; their rates are unreliable"
            )
        if result["demographic_parity_difference"] > limits["max_demographic_parity_difference"]:
            findings.append(
                f"{feature}: demographic parity difference "
                f"{result['demographic_parity_difference']:.3f} exceeds "
                f"{limits['max_demographic_parity_difference']}"
            )
        if result["demographic_parity_ratio"] < limits["min_demographic_parity_ratio"]:
            findings.append(
                f"{feature}: demographic parity ratio {result['demographic_parity_ratio']:.3f} "
                f"is below {limits['min_demographic_parity_ratio']}"
            )
        if result["equalized_odds_difference"] > limits["max_equalized_odds_difference"]:
            findings.append(
                f"{feature}: equalized odds difference "
                f"{result['equalized_odds_difference']:.3f} exceeds "
                f"{limits['max_equalized_odds_difference']}"
            )
    results = {
        "rows": int(evaluation.rows),
        "evaluation_sha256": evaluation.sha256,
        "thresholds": limits,
        "features": features,
        "findings": findings,
        "warnings": warnings,
    }
    if findings:
        return CheckResult(FAILED, f"{len(findings)} finding(s): {findings[0]}.", results)
    note = f" Warning: {warnings[0]}." if warnings else ""
    return CheckResult(PASSED, f"Within limits for {', '.join(features)}.{note}", results)
