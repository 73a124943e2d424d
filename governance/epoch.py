"""The PostgreSQL triggers that move the credential epoch on (see CredentialEpoch).

Deferred constraint triggers: the epoch row is locked and moved at commit, after
every other lock the transaction takes, so two transactions changing credentials
queue on it without ever deadlocking, and a reader sees the old credentials with the
old value or the new ones with the new value, never a mix. TRUNCATE, which row
triggers do not see, moves it at once.
"""

from config.rows import quote, table

FUNCTION = "governance_credentials_changed"


def _triggers() -> list[tuple[str, str, str]]:
    """(watched table, its row trigger, its TRUNCATE trigger), quoted."""
    return [
        (watched, quote(f"{name}_moves_epoch"), quote(f"{name}_truncate_moves_epoch"))
        for watched in _watched()
        for name in [watched.strip('"')]
    ]


def _watched() -> list[str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from governance.models import ApiToken

    user = get_user_model()
    through = [
        user.groups.through,
        user.user_permissions.through,
        Group.permissions.through,
    ]
    return [table(model) for model in (ApiToken, user, Group, Permission, ContentType, *through)]


def install_statements() -> list[str]:
    from governance.models import CredentialEpoch

    epoch = table(CredentialEpoch)
    value = quote("value")
    # Names come from the models' metadata; nothing here is a value.
    statements = [
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$
        BEGIN
            -- A missing row (a restored or flushed table) starts again from the
            -- clock, never from a value a worker may still remember.
            INSERT INTO {epoch} (id, {value})
                VALUES (1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
                ON CONFLICT (id) DO UPDATE SET {value} = {epoch}.{value} + 1;
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """  # noqa: S608
    ]
    for watched, row_trigger, truncate_trigger in _triggers():
        statements += [
            f"""CREATE CONSTRAINT TRIGGER {row_trigger}
                AFTER INSERT OR UPDATE OR DELETE ON {watched}
                DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()""",
            f"""CREATE TRIGGER {truncate_trigger}
                AFTER TRUNCATE ON {watched}
                FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()""",
        ]
    return statements


def remove_statements() -> list[str]:
    statements = [
        f"DROP TRIGGER IF EXISTS {trigger} ON {watched}"
        for watched, *triggers in _triggers()
        for trigger in triggers
    ]
    return [*statements, f"DROP FUNCTION IF EXISTS {FUNCTION}()"]
