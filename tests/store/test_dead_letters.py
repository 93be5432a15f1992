"""The dead-letter table on each backend: originals kept whole and sealed, one letter per
original, pages, retry bookkeeping, purge by age with a clock the test controls."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Column, Integer, MetaData, Table, inspect, select

from hub.domain.errors import NotFound
from hub.store import Store
from hub.store.dead_letters import DeadLetters, NewDeadLetter, Original, dead_letters

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MARKER = "father.time@xcar.wooster.local"
MAIL = f"From: {MARKER}\r\nSubject: Secret plans\r\n\r\nThe body, whole.\r\n".encode()


@pytest.fixture
def letters(store: Store) -> DeadLetters:
    DeadLetters.create_table(store.state_engine)
    return store.dead_letters


def _mail(body: bytes = MAIL, at: datetime = NOW) -> NewDeadLetter:
    original = Original.email(body, via="imap", mailbox="INBOX", uid=7)
    return NewDeadLetter("email", f"From address {MARKER!r} is refused", original, at)


def test_the_original_is_kept_whole_and_sealed(store: Store, letters: DeadLetters) -> None:
    webhook = Original.webhook(
        method="POST",
        hook="sms",
        url="https://hub.example.com/webhooks/twilio/sms?x=1",
        headers={"x-twilio-signature": "c2ln", "content-type": "application/x-www-form-urlencoded"},
        query={"x": "1"},
        body=b"From=%2B4915112345678&Body=Hallo\xff",
    )
    mail_id, webhook_id = letters.add(
        [_mail(), NewDeadLetter("twilio", "sender 'x' is not a phone number", webhook)]
    )

    mail = letters.get(mail_id)
    assert mail.original == Original("email", MAIL, {"via": "imap", "mailbox": "INBOX", "uid": 7})
    assert (mail.kind, mail.source, mail.size, mail.attempts) == ("email", "email", len(MAIL), 0)
    assert mail.reason == f"From address {MARKER!r} is refused"
    assert mail.received_at == NOW
    assert letters.get(webhook_id).original == webhook

    # At rest nothing of the original or the reason is readable; kind, source, size are.
    with store.state_engine.connect() as conn:
        rows = conn.execute(select(dead_letters)).mappings().all()
    stored = b"".join(
        v if isinstance(v, bytes) else str(v).encode() for row in rows for v in row.values()
    )
    for secret in (b"The body, whole", MARKER.encode(), b"Hallo", b"c2ln", b"phone number"):
        assert secret not in stored
    assert {row["kind"] for row in rows} == {"email", "webhook"}
    assert {row["source"] for row in rows} == {"email", "twilio"}


def test_a_letter_opens_only_with_its_master_key_and_in_its_own_row(
    store: Store, letters: DeadLetters
) -> None:
    (letter_id,) = letters.add([_mail()])
    stranger = DeadLetters(store.state_engine, os.urandom(32))
    with pytest.raises(InvalidTag):
        stranger.get(letter_id)
    # A sealed original moved to another row does not open there (its id is bound in).
    (other_id,) = letters.add([_mail(b"From: a@example.org\r\n\r\nother\r\n")])
    with store.state_engine.begin() as conn:
        sealed = conn.scalar(
            select(dead_letters.c.sealed_original).where(dead_letters.c.id == letter_id)
        )
        conn.execute(
            dead_letters.update()
            .where(dead_letters.c.id == other_id)
            .values(sealed_original=sealed)
        )
    with pytest.raises(InvalidTag):
        letters.get(other_id)


def test_the_same_original_set_aside_again_is_one_letter(letters: DeadLetters) -> None:
    first = letters.add([_mail()])
    again = letters.add([_mail(at=NOW + timedelta(minutes=5))])  # a redelivery
    assert first == again
    assert letters.count() == 1
    assert letters.get(first[0]).received_at == NOW  # the first receipt stays
    other_source = letters.add([NewDeadLetter("imap2", "r", Original.email(MAIL))])
    assert other_source != first
    assert letters.count() == 2


def test_pages_newest_first_with_filters(letters: DeadLetters) -> None:
    ids = letters.add(
        [
            _mail(f"From: a@example.org\r\n\r\n{n}\r\n".encode(), NOW + timedelta(minutes=n))
            for n in range(5)
        ]
    )
    (interaction,) = letters.add(
        [NewDeadLetter("hub.inbound", "bad", Original.interaction(b"{}"), NOW)]
    )
    tied = letters.add([_mail(b"tied", NOW)])  # the same time: the id decides, stably
    first = letters.list(3)
    assert [x.id for x in first] == ids[::-1][:3]
    assert all(x.original is None for x in first)
    rest = letters.list(3, after=first[-1].id)
    assert [x.id for x in rest][:1] == ids[::-1][3:4]
    last = letters.list(10, after=rest[0].id)
    assert {x.id for x in last} == {ids[0], interaction, *tied}
    assert [x.id for x in last] == sorted((x.id for x in last), reverse=True)
    assert [x.id for x in letters.list(kind="interaction")] == [interaction]
    assert [x.id for x in letters.list(source="hub.inbound")] == [interaction]
    assert letters.list(kind="webhook") == []
    with pytest.raises(NotFound):
        letters.list(after=uuid.uuid4())


def test_a_failed_retry_counts_and_keeps_its_error(letters: DeadLetters) -> None:
    (letter_id,) = letters.add([_mail()])
    letters.clock = lambda: NOW + timedelta(hours=1)
    after = letters.failed_again(letter_id, "still refused: bad \ud800 byte")
    assert after is not None
    assert (after.attempts, after.last_attempt_at) == (1, NOW + timedelta(hours=1))
    assert after.last_error == "still refused: bad \ufffd byte"  # kept, not refused
    assert letters.failed_again(letter_id, "again").attempts == 2  # type: ignore[union-attr]
    assert letters.drop(letter_id) is True
    assert letters.failed_again(letter_id, "gone meanwhile") is None
    assert letters.drop(letter_id) is False
    with pytest.raises(NotFound):
        letters.get(letter_id)


def test_purge_by_age_with_the_clock(letters: DeadLetters) -> None:
    _, edge, recent = letters.add(
        [
            _mail(b"1", NOW - timedelta(days=31)),
            _mail(b"2", NOW - timedelta(days=30)),
            _mail(b"3", NOW - timedelta(days=1)),
        ]
    )
    letters.clock = lambda: NOW
    assert letters.purge_expired(timedelta(days=30)) == 1
    assert {x.id for x in letters.list()} == {edge, recent}
    assert letters.purge(older_than=NOW) == 2
    assert letters.count() == 0


def test_the_table_it_replaces_is_dropped(store: Store) -> None:
    old = Table("connector_dead_letters", MetaData(), Column("id", Integer, primary_key=True))
    old.create(store.state_engine)
    DeadLetters.create_table(store.state_engine)
    DeadLetters.create_table(store.state_engine)  # and again: nothing to do
    tables = inspect(store.state_engine).get_table_names()
    assert "hub_dead_letters" in tables
    assert "connector_dead_letters" not in tables
