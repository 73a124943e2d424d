"""Test data made through the services, so it carries its audit events like real data."""

import hashlib
import itertools

from audits.context import audit_context
from registry.registration import model_version_register
from registry.services import registered_model_create

_counter = itertools.count(1)


def sha(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


def make_model(owner, name: str | None = None, **fields):
    with audit_context():
        return registered_model_create(
            actor=owner, name=name or f"model-{next(_counter)}", **fields
        )


def make_version(actor, model, seed: object | None = None, **fields):
    seed = next(_counter) if seed is None else seed
    fields.setdefault("artifact_uri", f"s3://artifacts/{model.name}/{seed}")
    with audit_context():
        version, _ = model_version_register(
            actor=actor, model=model, artifact_sha256=sha(seed), **fields
        )
    return version


def version_payload(seed: object, **extra) -> dict:
    return {
        "artifact_uri": f"s3://artifacts/{seed}.pkl",
        "artifact_sha256": sha(seed),
        "artifact_size": 2048,
        "framework": "sklearn",
        "metrics": {"auc": 0.91, "f1": 0.8},
        "params": {"max_depth": 6},
        "lineage": {
            "dataset_uri": "s3://data/train.parquet",
            "code_commit": "abc1234",
            "run_id": "r1",
        },
        **extra,
    }


def make_evaluation(actor, version, frame=None, *, sensitive_features=("group",), **spec):
    """Upload an evaluation set (fair and accurate unless `frame` says otherwise)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from registry.evaluation import EvaluationSpec
    from registry.services import evaluation_upload
    from tests.evaluation_sets import binary_set, to_csv

    frame = binary_set(seed=version.version) if frame is None else frame
    spec.setdefault("score_column", "score" if "score" in frame.columns else "")
    upload = SimpleUploadedFile("eval.csv", to_csv(frame), content_type="text/csv")
    with audit_context():
        return evaluation_upload(
            actor=actor,
            version=version,
            upload=upload,
            spec=EvaluationSpec(sensitive_features=list(sensitive_features), **spec),
        )
