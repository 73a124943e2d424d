"""Validation: the version's quality, computed from its evaluation data.

Accuracy, precision, recall, F1 and, with a score column, ROC AUC (scikit-learn),
each held to the policy's minimum; no metric may fall more than `max_regression`
below the production version's figure on its own evaluation data; and the metrics CI
reported at registration must agree with the computed ones within
`reported_tolerance`. Figures are kept at full precision."""

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from governance.checks import ERROR, FAILED, PASSED, CheckResult
from governance.checks._settings import number_errors
from registry.evaluation import load_frame
from registry.models import ModelVersion, Stage
from registry.selectors import latest_evaluation

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
DEFAULTS: dict[str, Any] = {"min": {}, "max_regression": None, "reported_tolerance": 0.02}


def validate_settings(settings: dict[str, Any]) -> dict[str, list[str]]:
    minimums = settings.get("min", {})
    rest = {k: v for k, v in settings.items() if k != "min"}
    errors = number_errors(rest, {"max_regression": (0, 1), "reported_tolerance": (0, 1)})
    if not isinstance(minimums, dict):
        return errors | {"min": ["Expected an object of metric -> minimum."]}
    for key, messages in number_errors(minimums, dict.fromkeys(METRICS, (0, 1))).items():
        errors[f"min.{key}"] = messages
    return errors


def compute(frame: pd.DataFrame, evaluation) -> dict[str, float]:
    y_true = frame[evaluation.label_column].to_numpy()
    y_pred = frame[evaluation.prediction_column].to_numpy()
    binary = set(np.unique(np.concatenate([y_true, y_pred]))) <= {0.0, 1.0}
    average = "binary" if binary else "macro"
    figures = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, average=average, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, average=average, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, average=average, zero_division=0),
    }
    if evaluation.score_column and binary and len(np.unique(y_true)) == 2:
        figures["roc_auc"] = skm.roc_auc_score(y_true, frame[evaluation.score_column].to_numpy())
    return {name: float(value) for name, value in figures.items()}


def _production_figures(version: ModelVersion) -> dict[str, Any] | None:
    production = (
        ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION)
        .exclude(pk=version.pk)
        .first()
    )
    if production is None:
        return None
    evaluation = latest_evaluation(production)
    if evaluation is None:
        return {"version": production.version, "metrics": None}
    return {"version": production.version, "metrics": compute(load_frame(evaluation), evaluation)}


def run(*, version, evaluation=None, settings: dict[str, Any]) -> CheckResult:
    settings = DEFAULTS | settings
    if evaluation is None:
        return CheckResult(ERROR, f"Version {version.version} has no evaluation data uploaded.")
    computed = compute(load_frame(evaluation), evaluation)
    findings: list[str] = []
    minimums = settings["min"] or {}
    for metric, minimum in minimums.items():
        if metric not in computed:
            findings.append(f"{metric} cannot be computed (it needs a score column)")
        elif computed[metric] < minimum:
            findings.append(f"{metric} {computed[metric]:.4f} is below the minimum {minimum}")

    reported = {
        name: float(value)
        for name, value in (version.metrics or {}).items()
        if name in METRICS and name in computed
    }
    tolerance = settings["reported_tolerance"]
    if tolerance is not None:
        for name, value in reported.items():
            if abs(computed[name] - value) > tolerance:
                findings.append(
                    f"{name} reported as {value:.4f} but computed as {computed[name]:.4f}"
                )

    production = None
    regression = settings["max_regression"]
    if regression is not None:
        production = _production_figures(version)
        if production and production["metrics"]:
            for name, value in production["metrics"].items():
                if name in computed and computed[name] < value - regression:
                    findings.append(
                        f"{name} {computed[name]:.4f} regresses from production "
                        f"v{production['version']}'s {value:.4f}"
                    )

    results = {
        "rows": int(evaluation.rows),
        "evaluation_sha256": evaluation.sha256,
        "computed": computed,
        "reported": reported,
        "minimums": minimums,
        "max_regression": regression,
        "reported_tolerance": tolerance,
        "production": production,
        "findings": findings,
    }
    shown = ", ".join(f"{k} {v:.3f}" for k, v in computed.items())
    if findings:
        return CheckResult(FAILED, f"{len(findings)} finding(s): {findings[0]}.", results)
    return CheckResult(PASSED, f"Quality holds: {shown}.", results)
