import hashlib
import secrets

import numpy as np
import pandas as pd
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand

from audits.context import audit_context
from governance.models import PromotionRequest
from governance.services import (
    policies_setup,
    promotion_request_approve,
    promotion_request_submit,
    role_grant,
    roles_setup,
    token_create,
    user_upsert,
)
from registry.evaluation import EvaluationSpec
from registry.models import RegisteredModel
from registry.registration import model_version_register
from registry.services import evaluation_upload, registered_model_create

USERS = [
    ("olivia", ["owner"]),
    ("rita", ["reviewer"]),
    ("raj", ["reviewer"]),
    ("carla", ["compliance"]),
    ("ci-bot", ["ci"]),
    ("admin", ["admin"]),
]

MODELS = [
    {
        "name": "credit-risk",
        "risk_tier": "high",
        "description": "Probability of default for consumer loan applications.",
        "tags": {"team": "lending", "domain": "credit"},
        "card": {
            "intended_use": "Rank loan applications by default risk for human underwriters.",
            "out_of_scope_uses": ["Fully automated rejection", "Employment screening"],
            "training_data": "36 months of anonymised applications, 2022-2025.",
            "evaluation_data": "A held-out quarter (2025 Q4), stratified by region.",
            "metrics": "ROC AUC, F1 at the underwriting threshold, per-group selection rates.",
            "limitations": "Thin-file applicants are under-represented.",
            "ethical_considerations": "Age and sex are excluded as features and audited.",
            "caveats_and_recommendations": "Re-validate after any policy change in lending.",
            "contacts": ["lending-ml@example.com"],
        },
        "versions": [
            {"framework": "xgboost", "metrics": {"accuracy": 0.85}},
            {"framework": "xgboost", "metrics": {"accuracy": 0.86}},
        ],
    },
    {
        "name": "churn-predictor",
        "risk_tier": "medium",
        "description": "Likelihood that a subscriber cancels within 30 days.",
        "tags": {"team": "growth"},
        "card": {
            "intended_use": "Prioritise retention offers.",
            "training_data": "Subscriber activity logs, 12 months.",
            "limitations": "Not calibrated for enterprise accounts.",
            "contacts": ["growth-ds@example.com"],
        },
        "versions": [
            {"framework": "sklearn", "metrics": {"accuracy": 0.85}},
            {"framework": "sklearn", "metrics": {"accuracy": 0.86}},
        ],
    },
]


def demo_evaluation(*, seed: int, accuracy: float, rows: int = 2000) -> SimpleUploadedFile:
    """A synthetic, fair evaluation set: labels, predictions, scores, two sensitive features."""
    rng = np.random.default_rng(seed)
    y_pred = (rng.random(rows) < 0.45).astype(int)
    y_true = np.where(rng.random(rows) < accuracy, y_pred, 1 - y_pred)
    noise = rng.random(rows) * 0.5
    frame = pd.DataFrame(
        {
            "y_true": y_true,
            "y_pred": y_pred,
            "score": np.round(np.where(y_pred == 1, 0.5 + noise, 0.5 - noise), 4),
            "sex": rng.choice(["female", "male"], size=rows),
            "age_band": rng.choice(["18-29", "30-44", "45-64", "65+"], size=rows),
        }
    )
    return SimpleUploadedFile("evaluation.csv", frame.to_csv(index=False).encode(), "text/csv")


class Command(BaseCommand):
    help = "Seed a small demo: users of every role (new passwords printed), two models, a CI token."

    def handle(self, *args, **options):
        with audit_context():
            roles_setup(actor=None)
            policies_setup(actor=None)
            users, passwords = {}, {}
            for username, roles in USERS:
                passwords[username] = secrets.token_urlsafe(9)
                users[username], _ = user_upsert(
                    actor=None, username=username, password=passwords[username]
                )
                for role in roles:
                    role_grant(actor=None, user=users[username], role=role)
            for spec in MODELS:
                model = RegisteredModel.objects.filter(name=spec["name"]).first()
                if model is None:
                    model = registered_model_create(
                        actor=users["olivia"],
                        **{
                            k: spec[k] for k in ("name", "risk_tier", "description", "tags", "card")
                        },
                    )
                for number, version in enumerate(spec["versions"], start=1):
                    digest = hashlib.sha256(f"{spec['name']}-{number}".encode()).hexdigest()
                    registered, created = model_version_register(
                        actor=users["ci-bot"],
                        model=model,
                        artifact_uri=f"s3://models/{spec['name']}/{number}/model.bin",
                        artifact_sha256=digest,
                        artifact_size=1_048_576 * number,
                        lineage={
                            "dataset_uri": f"s3://data/{spec['name']}/train.parquet",
                            "code_repo": "https://git.example.com/ml/models",
                            "code_commit": hashlib.sha1(digest.encode()).hexdigest(),  # noqa: S324 - a made-up commit id
                            "run_id": f"run-{number:04d}",
                        },
                        **version,
                    )
                    if created:
                        evaluation_upload(
                            actor=users["ci-bot"],
                            version=registered,
                            upload=demo_evaluation(
                                seed=number, accuracy=version["metrics"]["accuracy"]
                            ),
                            spec=EvaluationSpec(
                                score_column="score", sensitive_features=["sex", "age_band"]
                            ),
                        )
            if not PromotionRequest.objects.exists():
                self._promotions(users)
            _, token = token_create(actor=None, user=users["ci-bot"], name="demo")

        self.stdout.write("\nDemo users (passwords are new on every seed):")
        for username, roles in USERS:
            self.stdout.write(
                f"  {username:<8} {', '.join(roles):<11} password: {passwords[username]}"
            )
        self.stdout.write(f"\nCI token for ci-bot (Authorization: Bearer ...):\n  {token}\n")

    def _promotions(self, users):
        """One model in production, and requests waiting for the reviewers."""
        churn = RegisteredModel.objects.get(name="churn-predictor")
        credit = RegisteredModel.objects.get(name="credit-risk")
        first = promotion_request_submit(
            actor=users["ci-bot"],
            model=churn,
            version=1,
            target_stage="production",
            justification="First release.",
        )
        promotion_request_approve(
            actor=users["rita"], request_id=first.pk, comment="Card reviewed."
        )
        promotion_request_submit(
            actor=users["ci-bot"],
            model=churn,
            version=2,
            target_stage="production",
            justification="Retrained on Q4 data; F1 up 3 points.",
        )
        promotion_request_submit(
            actor=users["olivia"],
            model=credit,
            version=2,
            target_stage="production",
            justification="New bureau features.",
        )
