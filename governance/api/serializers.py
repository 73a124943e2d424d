from django.utils import timezone
from rest_framework import serializers

from governance.models import Approval, CheckRun, Decision, Policy, PromotionRequest, TargetStage
from registry.api.serializers import CharField

TEXT_MAX = 10_000


class PromotionRequestCreateSerializer(serializers.Serializer):
    model = CharField(max_length=128, help_text="The model's name.")
    version = serializers.IntegerField(min_value=1)
    target_stage = serializers.ChoiceField(choices=TargetStage.choices)
    justification = CharField(max_length=TEXT_MAX, required=False, allow_blank=True, default="")


class DecisionSerializer(serializers.Serializer):
    comment = CharField(max_length=TEXT_MAX, required=False, allow_blank=True, default="")


class RejectionSerializer(serializers.Serializer):
    comment = CharField(max_length=TEXT_MAX, help_text="Why: required, and not blank.")


class ApprovalSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    valid = serializers.SerializerMethodField(help_text="Whether the approval still counts.")

    class Meta:
        model = Approval
        fields = ["reviewer", "decision", "comment", "at", "expires_at", "valid"]

    def get_valid(self, obj) -> bool:
        return obj.decision == Decision.APPROVED and obj.expires_at > timezone.now()


class CheckRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = CheckRun
        fields = [
            "name",
            "status",
            "summary",
            "results",
            "started_at",
            "finished_at",
            "round",
            "attempts",
        ]


class PromotionRequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="version.version")
    requested_by = serializers.CharField(source="requested_by.username")
    approvals = ApprovalSerializer(many=True)
    checks = serializers.SerializerMethodField(help_text="The checks of the current round.")
    policy = serializers.JSONField(source="policy_snapshot", help_text="The frozen policy.")

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "model",
            "version",
            "from_stage",
            "target_stage",
            "status",
            "status_reason",
            "requested_by",
            "justification",
            "required_approvals",
            "approvals",
            "checks",
            "policy",
            "policy_digest",
            "created_at",
            "decided_at",
        ]

    def get_checks(self, obj) -> list[dict]:
        runs = [run for run in obj.check_runs.all() if run.round == obj.check_round]
        return CheckRunSerializer(sorted(runs, key=lambda r: r.name), many=True).data


class PolicySerializer(serializers.ModelSerializer):
    approval_valid_for_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = [
            "id",
            "name",
            "target_stage",
            "risk_tier",
            "checks",
            "required_approvals",
            "approver_role",
            "approval_valid_for_seconds",
            "updated_at",
        ]

    def get_approval_valid_for_seconds(self, obj) -> int:
        return int(obj.approval_valid_for.total_seconds())
