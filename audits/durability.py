"""Commits that release their locks before the disk has them, made durable before
anyone is told.

Every registration of a model, and every audit event, queues on the same rows (the
model's version counter and the chain head), and a synchronous commit holds them
until the disk has flushed its WAL: one flush after another, with every other
registration waiting behind it. A registration instead commits asynchronously
(`ASYNC_COMMIT`, for its own transaction only), so that the rows are free as soon as
its commit is in the WAL, and the worker then waits for the disk (`flush_wal`)
before it answers. No one is told of a registration that a crash could still undo.

What a crash at the wrong moment can undo is a registration nobody was told of yet
and what came after it: PostgreSQL writes and replays the WAL in order, so a later
event never survives an earlier one, and any synchronous commit that follows (every
other audit event's) makes all before it durable too. Readers that hand the log out
(exports, verification, checkpoints) flush before they read past the head, so they
never hand out an event a crash could take back.
"""

from django.db import DEFAULT_DB_ALIAS, connections

# A condition for the first change of a single-statement transaction: true, and it
# makes that transaction's commit asynchronous. A subquery, so that PostgreSQL sets it
# once, before the first row; its effect ends with the transaction.
ASYNC_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"
FLUSH_SQL = "SELECT pg_logical_emit_message(true, 'modelgov.flush', '')"
# The function FLUSH_SQL calls, by signature: the service's database role must run it.
FLUSH_FUNCTION = "pg_catalog.pg_logical_emit_message(boolean, text, text)"


def flush_wal(using: str = DEFAULT_DB_ALIAS) -> None:
    """Wait until everything committed so far, on any connection, is on disk.

    A transaction that writes one WAL record commits synchronously, and PostgreSQL
    flushes its WAL in order, up to and past that commit. The record is a logical
    decoding message, which touches no table and which no subscriber asks for (a
    transaction that only took an id would write nothing but its commit, and
    PostgreSQL does not flush for that). A no-op outside PostgreSQL and inside a
    transaction, whose own synchronous commit will flush the same WAL.
    """
    db = connections[using]
    if db.vendor != "postgresql" or db.in_atomic_block:
        return
    with db.cursor() as cursor:
        cursor.execute(FLUSH_SQL)
