"""The roles of the service, as Django groups with global permissions.

Object-level rights (owning a model, being named its reviewer) are guardian grants
made by the registry's services; these are the rights a role has everywhere.
"""

OWNER = "owner"
REVIEWER = "reviewer"
COMPLIANCE = "compliance"
CI = "ci"
ADMIN = "admin"
ROLES = (OWNER, REVIEWER, COMPLIANCE, CI, ADMIN)

# Service accounts: recorded as actor_kind "service", never approve, never use the admin.
SERVICE_ROLES = (CI,)
# Roles whose members may log into the admin.
STAFF_ROLES = (OWNER, REVIEWER, COMPLIANCE, ADMIN)

READ_INVENTORY = [
    "registry.view_registeredmodel",
    "registry.view_modelversion",
    "registry.view_evaluationdata",
    "governance.view_promotionrequest",
    "governance.view_policy",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    OWNER: [*READ_INVENTORY, "registry.add_registeredmodel", "audits.view_owned_auditevent"],
    REVIEWER: [*READ_INVENTORY],
    COMPLIANCE: [*READ_INVENTORY, "audits.view_auditevent"],
    CI: [
        *READ_INVENTORY,
        "registry.add_registeredmodel",
        "registry.add_modelversion",
        "registry.add_evaluationdata",
        "governance.add_promotionrequest",
    ],
    ADMIN: [
        *READ_INVENTORY,
        "registry.add_registeredmodel",
        "registry.change_registeredmodel",
        "registry.add_modelversion",
        "registry.change_modelversion",
        "registry.add_evaluationdata",
        "audits.view_auditevent",
        "governance.add_promotionrequest",
        "auth.view_user",
        "auth.view_group",
        "governance.view_apitoken",
        "governance.add_apitoken",
        "governance.add_policy",
        "governance.change_policy",
        "governance.change_apitoken",
        # Sign-in attempts counted by django-axes, and each failure, refused ones included.
        "axes.view_accessattempt",
        "axes.view_accessfailurelog",
    ],
}


def is_admin(user) -> bool:
    """The admin role or a superuser."""
    return user.is_superuser or user.groups.filter(name=ADMIN).exists()


def is_service_account(user) -> bool:
    """An account in service roles only, neither staff nor superuser: no person's."""
    if user.is_staff or user.is_superuser:
        return False
    roles = set(user.groups.values_list("name", flat=True))
    return bool(roles) and roles <= set(SERVICE_ROLES)
