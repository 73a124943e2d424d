"""Django's PostgreSQL backend, with a health check that asks the socket first.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every
request, so that a connection the server dropped (a restart, an idle timeout, a
terminated backend) is replaced instead of failing the request. A server that drops
a connection says so on its socket: it sends an error and closes, which leaves the
idle client's socket readable. So an idle connection whose socket has nothing to
read is usable without a round trip; one with something waiting gets the full check.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None:
            return False
        pgconn = connection.pgconn
        if (
            pgconn.status == pq.ConnStatus.OK
            and pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):
            try:
                readable, _, _ = select.select([pgconn.socket], [], [], 0)
            except (OSError, ValueError):
                return False
            if not readable:
                return True
        return super().is_usable()
