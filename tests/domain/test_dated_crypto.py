"""Unit tests of hub.domain.crypto's dated values (message bodies): sealed under the customer's
key AND the secret of their day, so erasure (the customer's key) and retention by age (the
day's secret) each make them unreadable; ``pd1:`` values recorded before still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.crypto import PersonalDataCipher, period_of
from tests.domain.test_crypto import ALICE, BOB, MemoryKeyStore

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
DAY = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)


class MemoryPeriodSecrets:
    """The PeriodSecretStore port in a dict (None: a destroyed day), counting reads."""

    def __init__(self) -> None:
        self.secrets: dict[str, bytes | None] = {}
        self.reads = 0

    def secret(self, period: str, *, create: bool) -> bytes | None:
        self.reads += 1
        if create and period not in self.secrets:
            self.secrets[period] = bytes([len(self.secrets) + 1]) * 32
        return self.secrets.get(period)

    def destroy_before(self, period: str) -> list[str]:
        days = sorted(d for d, s in self.secrets.items() if d < period and s is not None)
        for day in days:
            self.secrets[day] = None
        return days


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def keys() -> MemoryKeyStore:
    keys = MemoryKeyStore()
    writer = PersonalDataCipher(keys)
    writer.save_keys({ALICE: writer.new_key(ALICE), BOB: writer.new_key(BOB)})
    return keys


@pytest.fixture
def periods() -> MemoryPeriodSecrets:
    return MemoryPeriodSecrets()


def cipher_of(
    keys: MemoryKeyStore,
    periods: MemoryPeriodSecrets | None,
    retention_days: int | None = None,
    clock: Clock | None = None,
) -> PersonalDataCipher:
    return PersonalDataCipher(
        keys,
        periods=periods,
        retention=timedelta(days=retention_days) if retention_days else None,
        clock=clock or Clock(NOW),
    )


def test_a_dated_value_names_its_day_and_reads_back(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    token = cipher.encrypt_dated(ALICE, "parcel XQ-4711 is late", DAY)

    assert token is not None
    assert token.startswith("pd2:20240601:")
    assert "XQ-4711" not in token
    assert cipher.encrypt_dated(ALICE, "parcel XQ-4711 is late", DAY) != token  # fresh nonce
    assert cipher.decrypt(ALICE, token) == "parcel XQ-4711 is late"
    assert cipher_of(keys, periods).decrypt(ALICE, token) == "parcel XQ-4711 is late"
    assert cipher.encrypt_dated(ALICE, None, DAY) is None
    assert list(periods.secrets) == ["20240601"]


def test_the_day_is_the_utc_day_of_the_message() -> None:
    assert period_of(datetime(2024, 6, 1, 23, 30, tzinfo=UTC)) == "20240601"
    late_in_berlin = datetime.fromisoformat("2024-06-02T01:30:00+02:00")
    assert period_of(late_in_berlin) == "20240601"


def test_values_recorded_before_dated_ones_still_read(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    old = PersonalDataCipher(keys).encrypt(ALICE, "recorded by an older hub")
    assert old is not None
    assert old.startswith("pd1:")
    assert cipher_of(keys, periods).decrypt(ALICE, old) == "recorded by an older hub"


def test_destroying_the_days_secret_expires_its_values_only(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    old = cipher.encrypt_dated(ALICE, "old body", DAY)
    bobs_old = cipher.encrypt_dated(BOB, "Bob's old body", DAY)
    newer = cipher.encrypt_dated(ALICE, "newer body", DAY + timedelta(days=1))
    name = cipher.encrypt(ALICE, "Alice Example")

    destroyed = cipher.destroy_periods_before(DAY + timedelta(days=1, hours=5))

    assert destroyed == ["20240601"]
    for reader in (cipher, cipher_of(keys, periods)):  # this process's caches are dropped too
        assert reader.decrypt(ALICE, old) is None
        assert reader.decrypt(BOB, bobs_old) is None
        assert reader.decrypt(ALICE, newer) == "newer body"
        assert reader.decrypt(ALICE, name) == "Alice Example"
    assert cipher.destroy_periods_before(DAY + timedelta(days=1)) == []


def test_a_destroyed_day_never_gets_a_secret_again(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    cipher.encrypt_dated(ALICE, "old body", DAY)
    cipher.destroy_periods_before(DAY + timedelta(days=1))

    # A message of that day recorded later keeps no body: nobody could ever read it.
    assert cipher_of(keys, periods).encrypt_dated(ALICE, "late arrival", DAY) is None
    assert periods.secrets == {"20240601": None}


def test_erasing_the_customer_expires_their_dated_values(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    alices = cipher.encrypt_dated(ALICE, "Alice's body", DAY)
    bobs = cipher.encrypt_dated(BOB, "Bob's body", DAY)
    assert cipher.decrypt(ALICE, alices) == "Alice's body"  # its dated key is cached now

    cipher.erase(ALICE)

    assert cipher.decrypt(ALICE, alices) is None
    assert cipher_of(keys, periods).decrypt(ALICE, alices) is None
    assert cipher.decrypt(BOB, bobs) == "Bob's body"
    with pytest.raises(LookupError):
        cipher.encrypt_dated(ALICE, "after the erasure", DAY)


def test_a_dated_value_is_bound_to_its_customer_and_day(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    cipher.encrypt_dated(ALICE, "other day", DAY + timedelta(days=1))
    token = cipher.encrypt_dated(ALICE, "Alice's body", DAY)
    assert token is not None
    with pytest.raises(InvalidTag):
        cipher.decrypt(BOB, token)
    moved = token.replace("pd2:20240601:", "pd2:20240602:")
    with pytest.raises(InvalidTag):
        cipher.decrypt(ALICE, moved)
    flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(InvalidTag):
        cipher.decrypt(ALICE, flipped)


def test_day_secrets_and_dated_keys_are_cached(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    tokens = [cipher.encrypt_dated(c, f"body {n}", DAY) for n in range(5) for c in (ALICE, BOB)]
    reader = cipher_of(keys, periods)
    reads_before = periods.reads
    texts = [reader.decrypt(c, t) for t, c in zip(tokens, [ALICE, BOB] * 5, strict=True)]
    assert texts == [f"body {n}" for n in range(5) for _ in (ALICE, BOB)]
    assert periods.reads - reads_before == 1  # one read of the day's secret for them all
    assert periods.reads == 2


def test_without_a_period_store_values_are_sealed_as_before(keys: MemoryKeyStore) -> None:
    cipher = cipher_of(keys, None)
    token = cipher.encrypt_dated(ALICE, "body", DAY)
    assert token is not None
    assert token.startswith("pd1:")
    assert cipher.decrypt(ALICE, token) == "body"


def test_json_values_are_dated_too(keys: MemoryKeyStore, periods: MemoryPeriodSecrets) -> None:
    cipher = cipher_of(keys, periods)
    token = cipher.encrypt_json_dated(ALICE, {"language": "lt", "n": [1, 2]}, DAY)
    assert token is not None
    assert token.startswith("pd2:")
    assert cipher.decrypt_json(ALICE, token) == {"language": "lt", "n": [1, 2]}
    assert cipher.encrypt_json_dated(ALICE, {}, DAY) is None
    cipher.destroy_periods_before(DAY + timedelta(days=1))
    assert cipher.decrypt_json(ALICE, token) is None


# -- the retention period ----------------------------------------------------------------------


def test_the_retention_expires_by_the_clock_before_any_secret_is_destroyed(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    clock = Clock(DAY + timedelta(days=5))
    cipher = cipher_of(keys, periods, retention_days=30, clock=clock)
    token = cipher.encrypt_dated(ALICE, "body of June 1st", DAY)
    legacy = cipher.encrypt(ALICE, "an older hub's body of June 1st")
    assert cipher.decrypt(ALICE, token) == "body of June 1st"
    assert not cipher.expired(DAY)

    clock.now = DAY + timedelta(days=30, seconds=1)  # 30 days after the message, same day

    assert cipher.expired(DAY)
    assert not cipher.expired(DAY + timedelta(seconds=2))
    assert cipher.decrypt(ALICE, token) == "body of June 1st"  # its day is not wholly past
    assert cipher.decrypt(ALICE, token, at=DAY) is None  # the message is (exact time)
    assert cipher.decrypt(ALICE, legacy, at=DAY) is None  # whatever the format
    assert cipher.decrypt(ALICE, legacy) == "an older hub's body of June 1st"

    clock.now = datetime(2024, 7, 2, 0, 0, tzinfo=UTC)  # June 1st is wholly past the cutoff

    reads = periods.reads
    assert cipher.decrypt(ALICE, token) is None
    assert cipher_of(keys, periods, retention_days=30, clock=clock).decrypt(ALICE, token) is None
    assert periods.reads == reads  # known expired without asking the store
    assert periods.secrets["20240601"] is not None  # a run destroys it; reads do not


def test_a_value_dated_before_the_retention_is_not_kept(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods, retention_days=30)
    forty_days_ago = NOW - timedelta(days=40)
    assert cipher.encrypt_dated(ALICE, "recorded today, dated 40 days ago", forty_days_ago) is None
    assert cipher.encrypt_json_dated(ALICE, {"k": "v"}, NOW - timedelta(days=40)) is None
    assert periods.secrets == {}  # no secret made for a day already past
    kept = cipher.encrypt_dated(ALICE, "29 days ago", NOW - timedelta(days=29))
    assert cipher.decrypt(ALICE, kept) == "29 days ago"


def test_without_a_retention_nothing_expires_by_age(
    keys: MemoryKeyStore, periods: MemoryPeriodSecrets
) -> None:
    cipher = cipher_of(keys, periods)
    ancient = datetime(1999, 1, 1, tzinfo=UTC)
    token = cipher.encrypt_dated(ALICE, "from 1999", ancient)
    assert not cipher.expired(ancient)
    assert cipher.decrypt(ALICE, token, at=ancient) == "from 1999"


@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_any_text_round_trips_dated(text: str) -> None:
    keys = MemoryKeyStore()
    cipher = PersonalDataCipher(keys, periods=MemoryPeriodSecrets())
    cipher.save_keys({ALICE: cipher.new_key(ALICE)})
    token = cipher.encrypt_dated(ALICE, text, DAY)
    assert token is not None
    assert cipher.decrypt(ALICE, token) == text
