import json
import math
import re
import sys

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.json_input import JSONField
from registry.cards import card_json_schema, validate_card
from registry.models import (
    NAME_PATTERN,
    SHA256_PATTERN,
    EvaluationData,
    ModelVersion,
    RegisteredModel,
    RiskTier,
)

DESCRIPTION_MAX = 10_000
JSON_MAX_BYTES = 64 * 1024
TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}\Z")
TAG_VALUE_MAX = 256
TAGS_MAX = 50


FLOAT_MAX = sys.float_info.max


def _finite(value: int | float) -> bool:
    # math.isfinite raises OverflowError for an integer past what a float holds.
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _json_size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


class StringOnly:
    """DRF turns 42 into "42"; a client that sends a number where a string belongs
    has a bug worth telling it about."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected a string.", code="invalid")
        return super().to_internal_value(data)


# A character that is white space neither in Python's sense nor in JSON Schema's
# (ECMA-262's), spelled so that both read it alike: the schema's pattern and the server
# agree on what a blank text is.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"


class CharField(StringOnly, serializers.CharField):
    """Text as sent, not trimmed (so its length is the length the schema bounds); unless
    blank is allowed, it must hold more than white space."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        if not self.allow_blank and not self.read_only:
            self.validators.append(
                RegexValidator(NOT_BLANK, message=self.error_messages["blank"], code="blank")
            )


class RegexField(StringOnly, serializers.RegexField):
    """Matched as the schema's pattern is read (ECMA-262): on the text as sent, not
    trimmed, and with `$` at its very end rather than before a final line break."""

    def __init__(self, regex, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        if isinstance(regex, str) and regex.endswith("$"):
            regex = regex[:-1] + r"\Z"
        super().__init__(regex, **kwargs)


@extend_schema_field(card_json_schema())
class CardField(JSONField):
    """A model card; see registry/cards.py for its sections."""

    default_error_messages = {"invalid": "Expected an object of card sections."}

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Model card sections, all optional; no other key.")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("invalid")
        clean, errors = validate_card(data)
        if errors:
            raise serializers.ValidationError(errors)
        return clean


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": TAGS_MAX,
        "propertyNames": {"pattern": TAG_KEY.pattern.removesuffix("\\Z") + "$"},
        "additionalProperties": {"type": "string", "maxLength": TAG_VALUE_MAX},
    }
)
class TagsField(JSONField):
    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", 'An object of string tags, e.g. {"team": "risk"}.')
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object of strings.")
        if len(data) > TAGS_MAX:
            raise serializers.ValidationError(f"At most {TAGS_MAX} tags.")
        errors = {}
        for key, value in data.items():
            if not TAG_KEY.match(key):
                errors[key] = ["Tag names: letters, digits and . _ / -, at most 64."]
            elif not isinstance(value, str):
                errors[key] = ["Expected a string."]
            elif len(value) > TAG_VALUE_MAX or "\x00" in value:
                errors[key] = [f"At most {TAG_VALUE_MAX} characters, no null characters."]
        if errors:
            raise serializers.ValidationError(errors)
        return data


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"maxLength": 128},
        # What a float holds: a metric is compared as one.
        "additionalProperties": {"type": "number", "minimum": -FLOAT_MAX, "maximum": FLOAT_MAX},
    }
)
class MetricsField(JSONField):
    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "An object of metric name -> number.")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object of numbers.")
        errors = {}
        for key, value in data.items():
            if len(key) > 128 or "\x00" in key:
                errors[key] = ["Metric names are at most 128 characters."]
            elif isinstance(value, bool) or not isinstance(value, int | float):
                errors[key] = ["Expected a number."]
            elif not _finite(value):
                errors[key] = ["Expected a finite number."]
        if errors:
            raise serializers.ValidationError(errors)
        if _json_size(data) > JSON_MAX_BYTES:
            raise serializers.ValidationError(f"At most {JSON_MAX_BYTES} bytes.")
        return data


@extend_schema_field({"type": "object"})
class ParamsField(JSONField):
    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "An object of training parameters (any JSON values).")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object.")
        encoded = json.dumps(data, ensure_ascii=False)
        if len(encoded.encode("utf-8")) > JSON_MAX_BYTES:
            raise serializers.ValidationError(f"At most {JSON_MAX_BYTES} bytes.")
        if "\\u0000" in encoded:
            raise serializers.ValidationError("Null characters are not allowed.")
        return data


class SharedFields:
    """Build a serializer's fields once per class instead of once per instance.

    DRF deep-copies the declared fields, and a ModelSerializer introspects its model,
    for every instance: that was most of the cost of answering a registration. Only
    for serializers whose fields keep no state between calls, read no context and
    are never partial (the shared fields' root is an empty prototype).
    """

    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            # Bound to an empty prototype, so no instance or data is kept alive.
            shared = cls._shared_fields = super(SharedFields, cls()).fields
        return shared


class LineageSerializer(serializers.Serializer):
    schema_extra = {"additionalProperties": False}

    dataset_uri = CharField(max_length=2048, required=False, allow_blank=True)
    dataset_sha256 = RegexField(
        SHA256_PATTERN,
        required=False,
        allow_blank=True,
        error_messages={"invalid": "Expected 64 lowercase hexadecimal characters."},
    )
    code_repo = CharField(max_length=2048, required=False, allow_blank=True)
    code_commit = RegexField(
        r"^[0-9a-fA-F]{7,64}$",
        required=False,
        allow_blank=True,
        error_messages={"invalid": "Expected a commit hash (7 to 64 hexadecimal characters)."},
    )
    run_id = CharField(max_length=256, required=False, allow_blank=True)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown lineage field."] for key in sorted(unknown)}
                )
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses read-only fields that a client tries to write, instead of ignoring them."""

    read_only_messages: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {
                field: [message]
                for field, message in self.read_only_messages.items()
                if field in data
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class RegisteredModelInputSerializer(StrictSerializer):
    """A model to create."""

    name = RegexField(
        NAME_PATTERN,
        max_length=128,
        error_messages={
            "invalid": "Letters, digits and . _ -, starting with a letter or digit, at most 128."
        },
    )
    description = CharField(
        max_length=DESCRIPTION_MAX, required=False, allow_blank=True, default=""
    )
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, default=RiskTier.MEDIUM)
    card = CardField(default=dict)
    tags = TagsField(default=dict)


class RegisteredModelUpdateSerializer(StrictSerializer):
    """The fields of a model that change."""

    read_only_messages = {
        "name": "A model cannot be renamed.",
        "latest_versions": "Read-only.",
        "created_by": "Read-only.",
    }
    description = CharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    card = CardField()
    tags = TagsField()


class VersionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["version", "stage", "artifact_sha256", "created_at"]


class RegisteredModelSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    version_count = serializers.IntegerField(source="last_version", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "description",
            "risk_tier",
            "card",
            "tags",
            "created_by",
            "created_at",
            "updated_at",
            "version_count",
        ]


class RegisteredModelDetailSerializer(RegisteredModelSerializer):
    latest_versions = serializers.SerializerMethodField(
        help_text="The newest version in each stage (null when the stage holds none)."
    )

    class Meta(RegisteredModelSerializer.Meta):
        fields = [*RegisteredModelSerializer.Meta.fields, "latest_versions"]

    def get_latest_versions(self, obj) -> dict:
        latest = self.context["latest_versions"]
        return {
            stage: VersionSummarySerializer(version).data if version else None
            for stage, version in latest.items()
        }


class ModelVersionInputSerializer(SharedFields, StrictSerializer):
    """A version to register: its artifact, figures and lineage."""

    read_only_messages = {
        "stage": "The stage changes only through a promotion request.",
        "version": "Version numbers are assigned by the registry.",
    }
    artifact_uri = CharField(max_length=2048)
    artifact_sha256 = RegexField(
        SHA256_PATTERN,
        error_messages={"invalid": "Expected 64 lowercase hexadecimal characters."},
    )
    artifact_size = serializers.IntegerField(
        min_value=0, max_value=2**62, required=False, allow_null=True, default=None
    )
    framework = CharField(max_length=64, required=False, allow_blank=True, default="")
    metrics = MetricsField(default=dict)
    params = ParamsField(default=dict)
    lineage = LineageSerializer(required=False, default=dict)
    card = CardField(default=dict)
    tags = TagsField(default=dict)
    description = CharField(
        max_length=DESCRIPTION_MAX, required=False, allow_blank=True, default=""
    )


class ModelVersionUpdateSerializer(StrictSerializer):
    """The fields of a registered version that change."""

    read_only_messages = {
        "stage": "The stage changes only through a promotion request.",
        "version": "Read-only.",
        "model": "Read-only.",
        **dict.fromkeys(
            ("artifact_uri", "artifact_sha256", "artifact_size"),
            "A registered artifact cannot be changed; register a new version.",
        ),
        **dict.fromkeys(
            ("framework", "metrics", "params", "lineage"),
            "Recorded at registration; register a new version to change it.",
        ),
    }
    description = CharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True)
    card = CardField()
    tags = TagsField()


class ModelVersionSerializer(SharedFields, serializers.ModelSerializer):
    """A registered version."""

    model = CharField(source="model.name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "version",
            "stage",
            "artifact_uri",
            "artifact_sha256",
            "artifact_size",
            "framework",
            "metrics",
            "params",
            "lineage",
            "card",
            "tags",
            "description",
            "created_by",
            "created_at",
            "updated_at",
            "stage_changed_at",
        ]
        read_only_fields = fields


class GrantSerializer(serializers.Serializer):
    schema_extra = {"oneOf": [{"required": ["user"]}, {"required": ["group"]}]}

    permission = serializers.ChoiceField(choices=["change", "review"])
    user = CharField(max_length=150, required=False)
    group = CharField(max_length=150, required=False)

    def validate(self, attrs):
        if bool(attrs.get("user")) == bool(attrs.get("group")):
            raise serializers.ValidationError("Name exactly one of user or group.")
        return attrs


class EvaluationUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A CSV file with a header row.")
    label_column = CharField(max_length=128, default="y_true")
    prediction_column = CharField(max_length=128, default="y_pred")
    score_column = CharField(max_length=128, required=False, allow_blank=True, default="")
    sensitive_features = CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Comma-separated column names, e.g. `sex,age_band`.",
    )

    def validate_sensitive_features(self, value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("A column is named twice.")
        return names


class EvaluationDataSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version")
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = EvaluationData
        fields = [
            "id",
            "version",
            "rows",
            "columns",
            "sha256",
            "size_bytes",
            "label_column",
            "prediction_column",
            "score_column",
            "sensitive_features",
            "uploaded_by",
            "uploaded_at",
        ]
