"""Keys of the suite's own, made for each run as production configures them: the test
process's settings use them, and so does every service process a test starts."""

import base64
import os
import secrets

SECRET_KEY = secrets.token_urlsafe(50)
AUDIT_SIGNING_KEY = base64.b64encode(os.urandom(32)).decode()


def production_environment(**overrides: str) -> dict[str, str]:
    """This process's environment as a production service has it: DEBUG off, with keys."""
    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        **overrides,
    }
