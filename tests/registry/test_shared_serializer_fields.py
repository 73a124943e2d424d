"""Serializers that build their fields once per class answer exactly as DRF's
per-instance fields would, and keep no state from one use to the next."""

import copy

import pytest
from rest_framework import serializers

from registry.api.serializers import ModelVersionInputSerializer, ModelVersionSerializer
from tests.factories import make_model, make_version, version_payload

pytestmark = pytest.mark.django_db


def _fresh_twin(serializer_class):
    """The same serializer without shared fields: DRF's own behaviour."""
    declared = serializer_class._declared_fields
    attrs = {name: copy.deepcopy(field) for name, field in declared.items()}
    attrs["Meta"] = getattr(serializer_class, "Meta", None)
    bases = tuple(b for b in serializer_class.__mro__[1:] if b.__name__ != "SharedFields")
    return type(f"Fresh{serializer_class.__name__}", (bases[0],), attrs)


def test_a_version_renders_as_drfs_own_fields_would(make_user):
    ci = make_user("ci-bot", "ci")
    fraud = make_version(ci, make_model(make_user("olivia", "owner"), "fraud"), seed=1)
    churn = make_version(ci, make_model(make_user("oscar", "owner"), "churn"), seed=2)
    fresh = _fresh_twin(ModelVersionSerializer)
    assert not hasattr(fresh, "_shared_fields")

    for version in (fraud, churn, fraud):
        assert ModelVersionSerializer(version).data == fresh(version).data
    assert ModelVersionSerializer(churn).data["model"] == "churn"
    assert [v["model"] for v in ModelVersionSerializer([fraud, churn], many=True).data] == [
        "fraud",
        "churn",
    ]


def test_validating_one_payload_leaves_nothing_for_the_next():
    bad = ModelVersionInputSerializer(
        data=version_payload("x", artifact_sha256="a" * 63, metrics={"auc": "high"})
    )
    good = ModelVersionInputSerializer(data=version_payload("y"))

    assert not bad.is_valid()
    assert good.is_valid(), good.errors
    assert set(bad.errors) == {"artifact_sha256", "metrics"}
    assert good.validated_data["artifact_uri"] == "s3://artifacts/y.pkl"
    assert good.validated_data["metrics"] == {"auc": 0.91, "f1": 0.8}

    fresh = _fresh_twin(ModelVersionInputSerializer)
    for payload in (
        version_payload("z"),
        version_payload("z", lineage={"unknown": 1}),
        version_payload("z", card={"nonsense": "x"}),
        {"artifact_uri": 5},
        [],
    ):
        ours, theirs = ModelVersionInputSerializer(data=payload), fresh(data=payload)
        assert ours.is_valid() == theirs.is_valid()
        assert ours.errors == theirs.errors
        if not ours.errors:
            assert ours.validated_data == theirs.validated_data


def test_the_twin_really_is_drfs_behaviour():
    assert isinstance(_fresh_twin(ModelVersionSerializer)(), serializers.ModelSerializer)
    assert "SharedFields" not in [
        b.__name__ for b in _fresh_twin(ModelVersionInputSerializer).__mro__
    ]
