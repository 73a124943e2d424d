from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from registry.models import ModelVersion, RegisteredModel, RiskTier, Stage


def token_expiry():
    """When a token made now expires, when its creator names no lifetime."""
    return timezone.now() + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)


class ApiToken(models.Model):
    """An API token; only its SHA-256 is stored, the secret is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(
        max_length=12, help_text="The token's first characters, to recognise it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=token_expiry)
    # Written at most once per interval per process (governance.authentication), and
    # ignored by the credential epoch's triggers, so using a token moves nothing.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class CredentialEpoch(models.Model):
    """One row whose value moves on at the commit of every change to what a token
    signs in as: tokens, users, groups, memberships, permissions and content types
    (PostgreSQL triggers, governance/epoch.py).

    A worker that remembers what a token authenticated as, and the value it read in
    the same snapshot, may act on that memory only in a statement that also requires
    the value unchanged: any change in between makes the statement do nothing. A
    missing row reads as 0; the trigger that recreates it starts from the clock."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "credential epoch"

    def __str__(self) -> str:
        return f"credential epoch {self.value}"


class TargetStage(models.TextChoices):
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Policy(models.Model):
    """The rule for promotions to one stage, for one risk tier or for any tier.

    A request copies the policy into its own snapshot when it is created, so an edit
    here never changes a decision in flight."""

    name = models.CharField(max_length=100, unique=True)
    target_stage = models.CharField(max_length=12, choices=TargetStage.choices)
    risk_tier = models.CharField(
        max_length=10,
        choices=RiskTier.choices,
        blank=True,
        default="",
        help_text="Leave blank for any tier; a tier-specific policy wins over it.",
    )
    checks = models.JSONField(
        default=dict,
        blank=True,
        help_text='Check name -> its settings, e.g. {"integrity": {}}.',
    )
    required_approvals = models.PositiveSmallIntegerField(default=1)
    approver_role = models.CharField(max_length=32, default="reviewer")
    approval_valid_for = models.DurationField(
        default=timedelta(days=7), help_text="How long an approval counts, e.g. '7 00:00:00'."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["target_stage", "risk_tier"]
        constraints = [
            models.UniqueConstraint(
                fields=["target_stage", "risk_tier"], name="one_policy_per_stage_and_tier"
            ),
            models.CheckConstraint(
                condition=models.Q(target_stage__in=TargetStage.values),
                name="policy_target_stage_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Status(models.TextChoices):
    CHECKING = "checking"
    CHECKS_FAILED = "checks_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    PROMOTED = "promoted"


OPEN_STATUSES = (Status.CHECKING, Status.CHECKS_FAILED, Status.AWAITING_APPROVAL)
FINAL_STATUSES = (Status.REJECTED, Status.CANCELLED, Status.PROMOTED)


class PromotionRequest(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="promotions")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotions")
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    target_stage = models.CharField(max_length=12, choices=TargetStage.choices)
    # Written only by governance.transitions.transition().
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CHECKING)
    status_reason = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    justification = models.TextField(blank=True, default="")
    policy = models.ForeignKey(Policy, null=True, on_delete=models.SET_NULL, related_name="+")
    policy_snapshot = models.JSONField()
    policy_digest = models.CharField(max_length=64)
    # Copied from the snapshot, as columns, so the review queue can filter on them.
    required_approvals = models.PositiveSmallIntegerField()
    approver_role = models.CharField(max_length=32)
    check_round = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="promotion_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(target_stage__in=TargetStage.values),
                name="promotion_target_stage_valid",
            ),
            models.UniqueConstraint(
                fields=["version", "target_stage"],
                condition=models.Q(status__in=OPEN_STATUSES),
                name="one_open_request_per_version_and_stage",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="promotion_by_status")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model.name} v{self.version.version} → {self.target_stage}"

    def save(self, *args, **kwargs):
        # The status has one writer; a save that changes it from elsewhere is a bug.
        from governance.transitions import is_transitioning

        stored = getattr(self, "_stored_status", None)
        if stored is not None and self.status != stored and not is_transitioning():
            raise RuntimeError("PromotionRequest.status is written only by transition()")
        super().save(*args, **kwargs)
        self._stored_status = self.status

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_status = instance.__dict__.get("status")
        return instance

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Decision(models.TextChoices):
    APPROVED = "approved"
    REJECTED = "rejected"


class Approval(models.Model):
    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="approvals"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decision__in=Decision.values), name="approval_decision_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer} on #{self.request_id}"


class CheckStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    # The check ran but could not read what it was to verify (integrity: an artifact
    # the server cannot open); it blocks only where the frozen policy requires it.
    UNVERIFIED = "unverified"
    FAILED = "failed"
    ERROR = "error"


class CheckRun(models.Model):
    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="check_runs"
    )
    round = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=64)
    settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=CheckStatus.choices, default=CheckStatus.QUEUED
    )
    summary = models.TextField(blank=True, default="")
    results = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "round", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "round", "name"], name="one_run_per_check_and_round"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=CheckStatus.values), name="check_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="check_by_status")]

    def __str__(self) -> str:
        return f"{self.name} on #{self.request_id} ({self.status})"


class SignInBurst(models.Model):
    """Failed sign-ins of one username from one address that the audit log does not hold
    yet (governance.services.sign_ins). A burst is written to it once, with its counts,
    when it ends (its cool-off passes, or a sign-in ends it) and every cool-off while it
    goes on; so attempts, however many, never write to the log one by one."""

    username = models.CharField(max_length=255)
    address = models.CharField(max_length=45, blank=True)  # "" when the client has none
    path = models.CharField(max_length=255, blank=True)
    failures = models.PositiveIntegerField(default=0)
    # Of the failures, those django-axes refused, before any password was checked,
    # because the username or the address was locked out.
    refused = models.PositiveIntegerField(default=0)
    # Attempts refused because this burst locked its address (naming other usernames)
    # or its username (from other addresses) out.
    refused_other_usernames = models.PositiveIntegerField(default=0)
    refused_other_addresses = models.PositiveIntegerField(default=0)
    locked_username = models.BooleanField(default=False)
    locked_address = models.BooleanField(default=False)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["username", "address"], name="one_burst_per_client")
        ]
        indexes = [models.Index(fields=["last_failed_at"], name="sign_in_burst_by_last")]

    def __str__(self) -> str:
        return f"{self.failures} failed sign-ins as {self.username!r} from {self.address or '?'}"

    @property
    def is_empty(self) -> bool:
        """Nothing counted since the burst was last recorded."""
        return not (self.failures or self.refused_other_usernames or self.refused_other_addresses)
