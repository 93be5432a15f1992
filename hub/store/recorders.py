"""eventsourcing's application recorders plus one bulk read the hub's commands rely on.

``select_events_after({id: version, ...})`` returns, for many aggregates at once, the stored
events newer than the version the caller already has (0 for none): one query per batch instead
of one per aggregate. Chosen through eventsourcing's ``APPLICATION_RECORDER_TOPIC``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Composed, Identifier

_SQLITE_CHUNK = 400  # two parameters each, well below SQLite's variable limit


class HubSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def select_events_after(self, versions: Mapping[UUID, int]) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        items = list(versions.items())
        for start in range(0, len(items), _SQLITE_CHUNK):
            chunk = items[start : start + _SQLITE_CHUNK]
            values = ",".join("(?,?)" for _ in chunk)
            params: list[Any] = []
            for originator_id, version in chunk:
                params += [originator_id.hex, version]
            statement = (
                f"WITH want(oid, v) AS (VALUES {values}) "  # noqa: S608 (placeholders only)
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                f"FROM {self.events_table_name} e "
                "JOIN want ON e.originator_id = want.oid AND e.originator_version > want.v "
                "ORDER BY e.originator_id, e.originator_version"
            )
            with self.datastore.transaction(commit=False) as c:
                c.execute(statement, params)
                found += [
                    StoredEvent(
                        originator_id=UUID(row[0]),
                        originator_version=row[1],
                        topic=row[2],
                        state=row[3],
                    )
                    for row in c.fetchall()
                ]
        return found


def _without_retry(method: Any) -> Any:
    """The method under eventsourcing's ``@retry`` decorator."""
    return method.__wrapped__


class HubPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stored events go to PostgreSQL as one array of eventsourcing's composite type.
        # With ``%s`` psycopg sends it in text form, quoting and hex-escaping every field of
        # every event in Python, the largest cost in a profile of recording a batch.
        # ``%b`` sends the same array in binary form (bytes as they are). Same statement.
        text = self.insert_events_statement.as_string()
        assert text.count("unnest(%s::") == 1, text
        self.insert_events_statement = Composed([SQL(text.replace("unnest(%s::", "unnest(%b::"))])

    # eventsourcing retries these ten times on a connection error, each attempt waiting for the
    # pool: a request would hang for a minute while the database is down. The hub fails fast
    # instead (503 with Retry-After to clients; the follower loop backs off by itself).
    insert_events = _without_retry(PostgresApplicationRecorder.insert_events)
    select_events = _without_retry(PostgresApplicationRecorder.select_events)
    select_notifications = _without_retry(PostgresApplicationRecorder.select_notifications)
    max_notification_id = _without_retry(PostgresApplicationRecorder.max_notification_id)

    def select_events_after(self, versions: Mapping[UUID, int]) -> list[StoredEvent]:
        if not versions:
            return []
        # An index lookup per wanted aggregate, whatever the table's statistics: as a plain
        # join, a table never analysed (autovacuum off, or not yet run after a bulk load) was
        # read whole for every load, 40-75 ms at 100,000-300,000 events (issue 20's soak).
        # OFFSET 0 keeps the planner from flattening the lateral subquery into that join.
        statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%b::uuid[], %b::bigint[]) AS want(oid, v) "  # binary: see __init__
            "CROSS JOIN LATERAL ("
            "SELECT x.originator_id, x.originator_version, x.topic, x.state "
            "FROM {schema}.{table} x "
            "WHERE x.originator_id = want.oid AND x.originator_version > want.v OFFSET 0"
            ") AS e "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, [list(versions.keys()), list(versions.values())])
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]
