from governance.services.access import (
    role_grant,
    roles_setup,
    token_create,
    token_revoke,
    user_upsert,
)
from governance.services.check_runs import check_run_execute, check_runs_sweep
from governance.services.policies import policies_setup, policy_create, policy_update
from governance.services.promotions import (
    promotion_request_approve,
    promotion_request_cancel,
    promotion_request_reject,
    promotion_request_rerun_checks,
    promotion_request_submit,
)

__all__ = [
    "check_run_execute",
    "check_runs_sweep",
    "policies_setup",
    "policy_create",
    "policy_update",
    "promotion_request_approve",
    "promotion_request_cancel",
    "promotion_request_reject",
    "promotion_request_rerun_checks",
    "promotion_request_submit",
    "role_grant",
    "roles_setup",
    "token_create",
    "token_revoke",
    "user_upsert",
]
