from django.db import models

GENESIS_HASH = "0" * 64


class ActorKind(models.TextChoices):
    USER = "user"
    SERVICE = "service"
    SYSTEM = "system"


class ChainHead(models.Model):
    """The one row every writer locks: it serialises seq assignment and chaining."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    # The last event's time: the next event's is the database clock, or this if later.
    occurred_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="chain_head_singleton")
        ]

    def __str__(self) -> str:
        return f"head at seq {self.seq}"


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained log. Built only by audits.events.build()
    and written only by audits.writer: append() (for record() and the bulk import)
    and append_statement() (a registration's one statement on PostgreSQL)."""

    seq = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=150, help_text="Username, or 'system'.")
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    # null, not "", is how the contract spells "no model" / "no request".
    model = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    data = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    ip = models.CharField(max_length=45, null=True, blank=True)  # noqa: DJ001
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["occurred_at"], name="audit_occurred_at"),
            models.Index(fields=["action", "seq"], name="audit_action"),
            models.Index(fields=["model", "seq"], name="audit_model"),
            models.Index(fields=["actor", "seq"], name="audit_actor"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]
        permissions = [
            ("view_owned_auditevent", "Can read and export the audit events of models one owns")
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_repr}"


class AuditExport(models.Model):
    """One export taken, with the signed manifest served for it. Written together with
    its audit.exported event, once the last byte was sent; never changed."""

    id = models.UUIDField(primary_key=True)
    kind = models.CharField(max_length=32)
    format = models.CharField(max_length=8)
    actor = models.CharField(max_length=150)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    manifest = models.JSONField()
    event_seq = models.BigIntegerField(help_text="The seq of its audit.exported event.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} export {self.id} ({self.format})"


class AuditCheckpoint(models.Model):
    """The chain head at a moment, signed, so that a log cut short or rewritten later
    no longer matches it. Copies held outside the database are what make it count."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=80)
    public_key = models.TextField()
    signature = models.TextField()

    class Meta:
        ordering = ["seq", "id"]
        indexes = [models.Index(fields=["-created_at"], name="audit_checkpoint_created")]

    def __str__(self) -> str:
        return f"checkpoint at seq {self.seq}"
