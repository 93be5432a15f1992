"""Unit tests of hub.domain.crypto: per-customer encryption of personal data, crypto-shredding."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID, uuid4

import pytest
from cryptography.exceptions import InvalidTag

from hub.domain.crypto import PersonalDataCipher

ALICE = UUID("01900000-0000-7000-8000-00000000a11c")
BOB = UUID("01900000-0000-7000-8000-000000000b0b")


class MemoryKeyStore:
    """The KeyStore port in a dict, with a record of what was asked of it."""

    def __init__(self) -> None:
        self.keys: dict[UUID, bytes] = {}
        self.loads = 0

    def load(self, key_id: UUID) -> bytes | None:
        self.loads += 1
        return self.keys.get(key_id)

    def load_many(self, key_ids: Iterable[UUID]) -> dict[UUID, bytes]:
        self.loads += 1
        return {k: self.keys[k] for k in key_ids if k in self.keys}

    def save(self, keys: dict[UUID, bytes]) -> None:
        for key_id, raw in keys.items():
            self.keys.setdefault(key_id, raw)

    def destroy(self, key_id: UUID) -> None:
        self.keys.pop(key_id, None)


@pytest.fixture
def keys() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def cipher(keys: MemoryKeyStore) -> PersonalDataCipher:
    cipher = PersonalDataCipher(keys)
    cipher.save_keys({ALICE: cipher.new_key(ALICE), BOB: cipher.new_key(BOB)})
    return cipher


def test_round_trip(cipher: PersonalDataCipher) -> None:
    for plain in ["Alice Example", "phone:+4915112345678", "", "naïve ☃ text", "x" * 70_000]:
        token = cipher.encrypt(ALICE, plain)
        assert token is not None
        assert token.startswith("pd1:")
        assert cipher.decrypt(ALICE, token) == plain


def test_ciphertext_hides_the_plaintext_and_is_never_repeated(cipher: PersonalDataCipher) -> None:
    first = cipher.encrypt(ALICE, "alice@example.com")
    second = cipher.encrypt(ALICE, "alice@example.com")
    assert first != second  # a fresh nonce every time
    assert first is not None
    assert "alice" not in first
    assert cipher.decrypt(ALICE, first) == cipher.decrypt(ALICE, second) == "alice@example.com"


def test_none_stays_none(cipher: PersonalDataCipher) -> None:
    assert cipher.encrypt(ALICE, None) is None
    assert cipher.decrypt(ALICE, None) is None


def test_keys_are_saved_and_usable_by_another_cipher(keys: MemoryKeyStore) -> None:
    writer = PersonalDataCipher(keys)
    raw = writer.new_key(ALICE)
    token = writer.encrypt(ALICE, "secret")  # usable before it is saved
    assert keys.keys == {}
    writer.save_keys({ALICE: raw})
    assert keys.keys == {ALICE: raw}
    assert len(raw) == 32
    reader = PersonalDataCipher(keys)
    assert reader.decrypt(ALICE, token) == "secret"


def test_decrypting_with_another_customers_key_fails(cipher: PersonalDataCipher) -> None:
    token = cipher.encrypt(ALICE, "Alice's text")
    with pytest.raises(InvalidTag):
        cipher.decrypt(BOB, token)


def test_ciphertext_is_bound_to_its_key_id(keys: MemoryKeyStore) -> None:
    # Even the same key bytes under another id do not open it: the id is authenticated data.
    cipher = PersonalDataCipher(keys)
    raw = cipher.new_key(ALICE)
    keys.save({ALICE: raw, BOB: raw})
    token = cipher.encrypt(ALICE, "Alice's text")
    with pytest.raises(InvalidTag):
        PersonalDataCipher(keys).decrypt(BOB, token)
    assert PersonalDataCipher(keys).decrypt(ALICE, token) == "Alice's text"


def test_tampered_ciphertext_is_refused(cipher: PersonalDataCipher) -> None:
    token = cipher.encrypt(ALICE, "amount: 10 EUR")
    assert token is not None
    flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(InvalidTag):
        cipher.decrypt(ALICE, flipped)


def test_encrypt_without_a_key_is_refused(keys: MemoryKeyStore) -> None:
    with pytest.raises(LookupError):
        PersonalDataCipher(keys).encrypt(ALICE, "text")


def test_destroyed_key_erases_the_data(cipher: PersonalDataCipher, keys: MemoryKeyStore) -> None:
    alice_token = cipher.encrypt(ALICE, "Alice's address")
    bob_token = cipher.encrypt(BOB, "Bob's address")
    assert cipher.is_erased(ALICE) is False

    keys.destroy(ALICE)
    cipher.forget(ALICE)

    assert cipher.decrypt(ALICE, alice_token) is None
    assert cipher.is_erased(ALICE) is True
    assert cipher.decrypt_json(ALICE, cipher.encrypt_json(BOB, {"a": 1})) is None
    assert cipher.decrypt(BOB, bob_token) == "Bob's address"
    assert cipher.is_erased(BOB) is False
    assert PersonalDataCipher(keys).decrypt(ALICE, alice_token) is None


def test_absence_of_a_key_is_not_cached(keys: MemoryKeyStore) -> None:
    cipher = PersonalDataCipher(keys)
    assert cipher.is_erased(ALICE) is True
    other = PersonalDataCipher(keys)
    other.save_keys({ALICE: other.new_key(ALICE)})  # e.g. another process created it
    assert cipher.is_erased(ALICE) is False
    assert cipher.decrypt(ALICE, other.encrypt(ALICE, "late")) == "late"


def test_keys_are_cached_after_first_load(keys: MemoryKeyStore) -> None:
    writer = PersonalDataCipher(keys)
    writer.save_keys({ALICE: writer.new_key(ALICE)})
    token = writer.encrypt(ALICE, "x")
    reader = PersonalDataCipher(keys)
    for _ in range(5):
        assert reader.decrypt(ALICE, token) == "x"
    assert keys.loads == 1


def test_prefetch_loads_many_keys_in_one_read(keys: MemoryKeyStore) -> None:
    writer = PersonalDataCipher(keys)
    ids = [uuid4() for _ in range(5)]
    writer.save_keys({i: writer.new_key(i) for i in ids})
    tokens = {i: writer.encrypt(i, f"secret {n}") for n, i in enumerate(ids)}
    reader = PersonalDataCipher(keys)

    reader.prefetch([*ids, uuid4()])  # one unknown id: nothing cached for it

    assert [reader.decrypt(i, tokens[i]) for i in ids] == [f"secret {n}" for n in range(5)]
    assert keys.loads == 1


def test_json_round_trip_and_empty_values(cipher: PersonalDataCipher) -> None:
    value = {"order": 1234, "tags": ["vip", "late"], "nested": {"ok": True, "none": None}}
    token = cipher.encrypt_json(ALICE, value)
    assert cipher.decrypt_json(ALICE, token) == value
    assert cipher.encrypt_json(ALICE, {}) is None
    assert cipher.encrypt_json(ALICE, None) is None
    assert cipher.decrypt_json(ALICE, None) is None


def test_save_keeps_the_first_key_for_an_id(keys: MemoryKeyStore) -> None:
    cipher = PersonalDataCipher(keys)
    first = cipher.new_key(ALICE)
    cipher.save_keys({ALICE: first})
    cipher.save_keys({})  # nothing to save is fine
    keys.save({ALICE: b"\x00" * 32})
    assert keys.keys[ALICE] == first


def test_json_with_a_lone_surrogate_is_refused_at_encryption(cipher: PersonalDataCipher) -> None:
    cipher.new_key(ALICE)
    with pytest.raises(UnicodeEncodeError):
        cipher.encrypt_json(ALICE, {"note": "x\ud800"})


def test_json_stored_with_surrogate_escapes_decrypts_to_publishable_text(
    cipher: PersonalDataCipher,
) -> None:
    """Events stored before the hub refused lone surrogates hold them as "\\ud800" escapes;
    read back, they become U+FFFD, so the event can still be published."""
    cipher.new_key(ALICE)
    token = cipher.encrypt(ALICE, '{"note":"x\\ud800","k\\udfff":["\\ud83d\\ude00"]}')
    assert cipher.decrypt_json(ALICE, token) == {"note": "x\ufffd", "k\ufffd": ["\U0001f600"]}
    assert cipher.decrypt_json(ALICE, cipher.encrypt_json(ALICE, {"a": "é\\ud800"})) == {
        "a": "é\\ud800"
    }
