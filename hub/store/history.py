"""Stored events by their store positions (notification ids), for the timeline as it was at a
moment (docs/history.md): a page of an old timeline needs a few scattered events, not a range.

eventsourcing's recorders read notifications by range only (``select_notifications``), so
this is one SELECT by id on each backend's stored-events table, its rows shaped as the
library's ``Notification``s so the application's mapper decodes them as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

#: Positions per SELECT on SQLite (one parameter each, well below its variable limit).
_SQLITE_CHUNK = 500


def select_notifications_at(
    recorder: ApplicationRecorder, positions: Sequence[int], topics: Sequence[str]
) -> list[Notification]:
    """The notifications at these positions whose topic is one of ``topics``, in store
    order (positions that hold none, or another topic, are left out)."""
    wanted = sorted(set(positions))
    if not wanted:
        return []
    if isinstance(recorder, SQLiteApplicationRecorder):
        found = _sqlite(recorder, wanted)
    elif isinstance(recorder, PostgresApplicationRecorder):
        found = _postgres(recorder, wanted)
    else:  # pragma: no cover - the hub chooses one of the two recorders
        raise TypeError(f"no read by position for {type(recorder).__name__}")
    allowed = set(topics)
    return sorted((n for n in found if n.topic in allowed), key=_id)


def _id(notification: Notification) -> int:
    return notification.id


def _sqlite(recorder: SQLiteApplicationRecorder, positions: list[int]) -> list[Notification]:
    found: list[Notification] = []
    for start in range(0, len(positions), _SQLITE_CHUNK):
        chunk = positions[start : start + _SQLITE_CHUNK]
        marks = ",".join("?" * len(chunk))
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {recorder.events_table_name} WHERE rowid IN ({marks})"
        )
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, chunk)
            found += [
                Notification(
                    id=row["rowid"],
                    originator_id=recorder.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            ]
    return found


def _postgres(recorder: PostgresApplicationRecorder, positions: list[int]) -> list[Notification]:
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {schema}.{table} WHERE notification_id = ANY(%s)"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    params: list[Any] = [positions]
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, params)
        return [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]
