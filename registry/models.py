from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class RiskTier(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Stage(models.TextChoices):
    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class RegisteredModel(models.Model):
    name = models.CharField(max_length=128, unique=True, validators=[RegexValidator(NAME_PATTERN)])
    description = models.TextField(blank=True, default="")
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    card = models.JSONField(default=dict, blank=True, help_text="The model card; see cards.py.")
    tags = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The highest version number handed out; read and advanced under this row's lock.
    last_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        permissions = [("review_registeredmodel", "Can approve promotions of this model")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(risk_tier__in=RiskTier.values), name="model_risk_tier_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    # No index of its own: the (model, ...) unique constraints and version_by_stage
    # lead with it, and a plan that picked a model-only index would read every version
    # of the model to find one artifact.
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="versions", db_index=False
    )
    version = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Written only by governance's promotion transition; read-only everywhere else.
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NONE)
    artifact_uri = models.CharField(max_length=2048)
    artifact_sha256 = models.CharField(max_length=64, validators=[RegexValidator(SHA256_PATTERN)])
    artifact_size = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    framework = models.CharField(max_length=64, blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    lineage = models.JSONField(default=dict, blank=True)
    card = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    stage_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="version_unique_per_model"),
            models.UniqueConstraint(
                fields=["model", "artifact_sha256"], name="artifact_unique_per_model"
            ),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(stage="production"),
                name="one_production_version_per_model",
            ),
            models.CheckConstraint(
                condition=models.Q(stage__in=Stage.values), name="version_stage_valid"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="version_positive"),
        ]
        indexes = [models.Index(fields=["model", "stage", "-version"], name="version_by_stage")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


def evaluation_path(instance: "EvaluationData", filename: str) -> str:
    version = instance.version
    return f"evaluation/{version.model.name}/v{version.version}/{instance.sha256}.csv"


class EvaluationData(models.Model):
    """A labelled evaluation set for one version; the newest upload is the one gates use."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="evaluations")
    file = models.FileField(upload_to=evaluation_path, max_length=512)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    rows = models.PositiveBigIntegerField()
    columns = models.JSONField(default=list)
    label_column = models.CharField(max_length=128)
    prediction_column = models.CharField(max_length=128)
    score_column = models.CharField(max_length=128, blank=True, default="")
    sensitive_features = models.JSONField(default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "evaluation data"
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} evaluation ({self.rows} rows)"
