"""The validation and fairness gates as plain functions of a version, its evaluation
data and the policy's settings."""

import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn import metrics as skm

from governance.checks import fairness, validate_policy_checks, validation
from tests.evaluation_sets import binary_set
from tests.factories import make_evaluation, make_model, make_version

pytestmark = pytest.mark.django_db

BIASED = {"a": 0.6, "b": 0.3}


@pytest.fixture
def people(make_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return make_user("olivia", "owner"), make_user("ci-bot", "ci")


def evaluated(people, frame, seed="v", **fields):
    owner, ci = people
    model = make_model(owner, f"m-{seed}") if not hasattr(people, "model") else people.model
    version = make_version(ci, model, seed=seed, **fields)
    return version, make_evaluation(ci, version, frame, sensitive_features=("group", "sex"))


def test_a_biased_set_fails_fairness_with_the_figures(people):
    frame = binary_set(rows=4000, rates=BIASED, seed=11)
    version, evaluation = evaluated(people, frame)
    result = fairness.run(version=version, evaluation=evaluation, settings={})
    assert result.status == "failed"
    assert "demographic parity" in result.summary
    group = result.results["features"]["group"]
    assert set(group["groups"]) == {"a", "b"}
    assert group["groups"]["a"]["selection_rate"] == pytest.approx(0.6, abs=0.03)
    assert group["groups"]["b"]["selection_rate"] == pytest.approx(0.3, abs=0.03)
    assert group["groups"]["a"]["count"] + group["groups"]["b"]["count"] == 4000
    assert result.results["thresholds"]["min_demographic_parity_ratio"] == 0.8


def test_the_fairness_figures_equal_fairlearns_own_to_1e_9(people):
    frame = binary_set(rows=3000, rates=BIASED, seed=5)
    version, evaluation = evaluated(people, frame)
    result = fairness.run(version=version, evaluation=evaluation, settings={})
    y_true, y_pred = frame["y_true"], frame["y_pred"]
    for feature in ("group", "sex"):
        ours = result.results["features"][feature]
        groups = frame[feature]
        assert ours["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9
        )
        assert ours["demographic_parity_ratio"] == pytest.approx(
            demographic_parity_ratio(y_true, y_pred, sensitive_features=groups), abs=1e-9
        )
        assert ours["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9
        )
        theirs = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
        ).by_group
        for name, row in theirs.iterrows():
            for metric in ("selection_rate", "true_positive_rate", "false_positive_rate"):
                assert ours["groups"][name][metric] == pytest.approx(row[metric], abs=1e-9)
            assert ours["groups"][name]["count"] == int((groups == name).sum())


def test_a_fair_set_passes(people):
    version, evaluation = evaluated(people, binary_set(rows=4000, seed=3))
    result = fairness.run(version=version, evaluation=evaluation, settings={})
    assert result.status == "passed", result.summary
    assert result.results["warnings"] == []


def test_a_small_group_is_a_warning_not_a_silent_pass(people):
    frame = binary_set(rows=2000, rates={"a": 0.5, "b": 0.5}, seed=3)
    frame.loc[:9, "group"] = "tiny"
    version, evaluation = evaluated(people, frame)
    result = fairness.run(
        version=version,
        evaluation=evaluation,
        settings={
            "max_demographic_parity_difference": 1,
            "min_demographic_parity_ratio": 0,
            "max_equalized_odds_difference": 1,
        },
    )
    assert result.status == "passed"
    assert result.results["features"]["group"]["small_groups"] == ["tiny"]
    assert "tiny" in result.summary
    assert "Warning" in result.summary


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (binary_set(rows=50).assign(y_pred=lambda f: f.y_pred * 2), "binary"),
    ],
)
def test_fairness_needs_binary_outcomes(people, frame, message):
    version, evaluation = evaluated(people, frame)
    result = fairness.run(version=version, evaluation=evaluation, settings={})
    assert result.status == "error"
    assert message in result.summary


def test_a_check_without_evaluation_data_is_an_error(people):
    owner, ci = people
    version = make_version(ci, make_model(owner, "bare"), seed="bare")
    for gate in (validation, fairness):
        result = gate.run(version=version, evaluation=None, settings={})
        assert result.status == "error"
        assert "no evaluation data" in result.summary


def test_validation_computes_sklearns_figures_at_full_precision(people):
    frame = binary_set(rows=1000, seed=9)
    version, evaluation = evaluated(people, frame)
    result = validation.run(version=version, evaluation=evaluation, settings={})
    computed = result.results["computed"]
    assert computed == {
        "accuracy": skm.accuracy_score(frame.y_true, frame.y_pred),
        "precision": skm.precision_score(frame.y_true, frame.y_pred),
        "recall": skm.recall_score(frame.y_true, frame.y_pred),
        "f1": skm.f1_score(frame.y_true, frame.y_pred),
        "roc_auc": skm.roc_auc_score(frame.y_true, frame.score),
    }
    assert result.status == "passed"


def test_validation_holds_each_metric_to_its_minimum(people):
    version, evaluation = evaluated(people, binary_set(rows=1000, seed=9, accuracy=0.6))
    result = validation.run(
        version=version, evaluation=evaluation, settings={"min": {"accuracy": 0.7, "f1": 0.1}}
    )
    assert result.status == "failed"
    assert result.results["findings"] == [
        f"accuracy {result.results['computed']['accuracy']:.4f} is below the minimum 0.7"
    ]


def test_a_reported_metric_that_disagrees_is_a_finding(people):
    version, evaluation = evaluated(
        people, binary_set(rows=1000, seed=9), metrics={"accuracy": 0.99}
    )
    result = validation.run(
        version=version, evaluation=evaluation, settings={"reported_tolerance": 0.02}
    )
    assert result.status == "failed"
    assert result.results["reported"] == {"accuracy": 0.99}
    assert "accuracy reported as 0.9900" in result.results["findings"][0]


def test_a_regression_against_production_is_a_finding(people, world):
    from registry.models import ModelVersion

    worse = world.add_version("worse", frame=binary_set(rows=1000, seed=9, accuracy=0.7))
    production = ModelVersion.objects.get(pk=world.versions[0].pk)
    ModelVersion.objects.filter(pk=production.pk).update(stage="production")
    from registry.selectors import latest_evaluation

    result = validation.run(
        version=worse, evaluation=latest_evaluation(worse), settings={"max_regression": 0.02}
    )
    assert result.status == "failed"
    assert result.results["production"]["version"] == 1
    assert any("regresses from production v1" in f for f in result.results["findings"])


def test_a_minimum_that_needs_scores_without_them_is_a_finding(people):
    version, evaluation = evaluated(people, binary_set(rows=200, with_scores=False))
    result = validation.run(
        version=version, evaluation=evaluation, settings={"min": {"roc_auc": 0.7}}
    )
    assert result.status == "failed"
    assert "roc_auc cannot be computed" in result.results["findings"][0]


@pytest.mark.parametrize(
    ("checks", "key"),
    [
        ({"validation": {"min": {"accuracy": 2}}}, "checks.validation.min.accuracy"),
        ({"validation": {"min": {"bleu": 0.5}}}, "checks.validation.min.bleu"),
        ({"validation": {"tolerance": 0.1}}, "checks.validation.tolerance"),
        (
            {"fairness": {"min_demographic_parity_ratio": "high"}},
            "checks.fairness.min_demographic_parity_ratio",
        ),
        ({"fairness": {"min_group_size": -1}}, "checks.fairness.min_group_size"),
        ({"fairness": []}, "checks.fairness"),
    ],
)
def test_bad_gate_settings_are_refused(checks, key):
    assert key in validate_policy_checks(checks)
