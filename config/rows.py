"""Single-row statements for the write paths every registration runs.

The ORM builds and compiles a query on every call; on the registration path that
compilation costs more than PostgreSQL spends executing the statements. These helpers
build each statement once per model and database, and take their values through the
fields' own `pre_save` and `get_db_prep_save`, so what is stored is what `save()`
would store. They send no model signals: nothing in this project listens to them.
"""

from dataclasses import dataclass
from functools import cache

from django.db import connections, models
from django.db.models.fields import AutoFieldMixin


@dataclass(frozen=True)
class Condition:
    """An SQL condition with its parameters, for a statement to require."""

    sql: str
    params: tuple = ()


def quote(table_or_column: str, using: str = "default") -> str:
    return connections[using].ops.quote_name(table_or_column)


def table(model: type[models.Model], using: str = "default") -> str:
    return quote(model._meta.db_table, using)


def for_update(using: str = "default") -> str:
    """` FOR UPDATE` where the database has row locks; SQLite locks the whole file."""
    return " FOR UPDATE" if connections[using].features.has_select_for_update else ""


@cache
def _insert(model: type[models.Model], using: str):
    connection = connections[using]
    pk = model._meta.pk
    generated_pk = isinstance(pk, AutoFieldMixin)
    fields = tuple(
        field for field in model._meta.concrete_fields if not (generated_pk and field is pk)
    )
    if any(field.generated or field.has_db_default() for field in fields):
        raise TypeError(f"{model.__name__} has values the database computes; use save().")
    # Names come from the model's own metadata, values are bound parameters.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        table(model, using),
        ", ".join(quote(field.column, using) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    returning = generated_pk and connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {quote(pk.column, using)}"
    return sql, fields, generated_pk, returning


def insert_row(obj: models.Model, using: str = "default") -> models.Model:
    """INSERT one new instance, as `obj.save(force_insert=True)` would, in one statement."""
    connection = connections[using]
    model = type(obj)
    sql, fields, generated_pk, returning = _insert(model, using)
    values = [
        field.get_db_prep_save(field.pre_save(obj, True), connection=connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if generated_pk:
            if returning:
                pk = cursor.fetchone()[0]
            else:
                pk = connection.ops.last_insert_id(
                    cursor, model._meta.db_table, model._meta.pk.column
                )
            obj.pk = pk
    obj._state.adding = False
    obj._state.db = using
    return obj
