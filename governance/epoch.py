"""The PostgreSQL triggers that move the credential epoch on (see CredentialEpoch).

Deferred constraint triggers: the epoch row is locked and moved at commit, after
every other lock the transaction takes, so two transactions changing credentials
queue on it without ever deadlocking, and a reader sees the old credentials with the
old value or the new ones with the new value, never a mix. TRUNCATE, which row
triggers do not see, moves it at once.

An update that changes only a token's last use moves nothing (_ignored_on_update): it
is written while the token is used, and moving the epoch then would make every worker
forget every token it remembers.
"""

from config.rows import quote, table

FUNCTION = "governance_credentials_changed"


def _triggers() -> list[tuple[str, str, str, str]]:
    """(watched table, its row trigger, its UPDATE trigger, its TRUNCATE trigger),
    quoted. The UPDATE trigger exists only where some columns are ignored; the row
    trigger then watches INSERT and DELETE."""
    return [
        (
            watched,
            quote(f"{name}_moves_epoch"),
            quote(f"{name}_update_moves_epoch"),
            quote(f"{name}_truncate_moves_epoch"),
        )
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


def _ignored_on_update() -> dict[str, tuple[str, ...]]:
    """Watched table -> the columns whose change alone moves nothing."""
    from governance.models import ApiToken

    return {table(ApiToken): (ApiToken._meta.get_field("last_used_at").column,)}


def row_trigger_statements(
    watched: str, row_trigger: str, update_trigger: str, ignored: tuple[str, ...]
) -> list[str]:
    if not ignored:
        return [
            f"""CREATE CONSTRAINT TRIGGER {row_trigger}
                AFTER INSERT OR UPDATE OR DELETE ON {watched}
                DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"""
        ]
    # Whole rows compared as jsonb without the ignored keys: a column added later is
    # watched without the trigger being rebuilt, and the condition holds on a table
    # that does not have the ignored columns yet (an earlier migration's state).
    without = "".join(f" - '{column}'" for column in ignored)
    return [
        f"""CREATE CONSTRAINT TRIGGER {row_trigger}
            AFTER INSERT OR DELETE ON {watched}
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()""",
        f"""CREATE CONSTRAINT TRIGGER {update_trigger}
            AFTER UPDATE ON {watched}
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW
            WHEN ((to_jsonb(OLD){without}) IS DISTINCT FROM (to_jsonb(NEW){without}))
            EXECUTE FUNCTION {FUNCTION}()""",
    ]


def token_triggers() -> tuple[str, str, str, tuple[str, ...]]:
    """The API token table's (watched table, row trigger, UPDATE trigger, ignored
    columns), for the migration that split its trigger."""
    from governance.models import ApiToken

    watched, row_trigger, update_trigger, _ = next(
        found for found in _triggers() if found[0] == table(ApiToken)
    )
    return watched, row_trigger, update_trigger, _ignored_on_update()[watched]


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
    ignored = _ignored_on_update()
    for watched, row_trigger, update_trigger, truncate_trigger in _triggers():
        statements += [
            *row_trigger_statements(watched, row_trigger, update_trigger, ignored.get(watched, ())),
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
