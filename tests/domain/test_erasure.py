"""Erasure as the domain decides it (hub.domain.erasure): the whole merge group, keys first,
one ``Erased`` event per member however often it is asked, reason codes only; and the free
text around a merge is encrypted under the customer's key, so an erasure takes it too."""

from __future__ import annotations

from uuid import UUID

import pytest

from hub.config import Settings
from hub.domain.errors import CustomerErased, InvalidCommand, NotFound
from hub.domain.model import Customer
from hub.store import Store
from tests.domain.helpers import envelopes
from tests.support.store import inbound, raw_event_states


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _customer(store: Store, address: str, pid: str) -> UUID:
    [recorded] = store.app.record_interactions([inbound(pid, address=address)])
    return recorded.customer_id


def _state(store: Store, customer_id: UUID) -> Customer:
    return store.app.read(lambda uow: uow.require(Customer, customer_id, "customer"))


def test_erasing_any_member_erases_the_whole_group(store: Store) -> None:
    a = _customer(store, "phone:+37060000001", "e1")
    b = _customer(store, "phone:+37060000002", "e2")
    c = _customer(store, "phone:+37060000003", "e3")
    other = _customer(store, "phone:+37060000004", "e4")
    store.app.identity.merge(a, b, actor="agent", reason="same person")
    store.app.identity.merge(b, c, actor="agent", reason="same person")  # goes to a's root

    erasure = store.app.erasure.erase(c, actor="dpo", reason="data_subject_request")

    assert set(erasure.customer_ids) == {a, b, c}
    assert set(erasure.newly_erased) == {a, b, c}
    assert set(erasure.addresses) == {f"phone:+3706000000{n}" for n in (1, 2, 3)}
    assert all(store.cipher.is_erased(x) for x in (a, b, c))
    assert not store.cipher.is_erased(other)
    assert all(_state(store, x).erased_at == erasure.erased_at for x in (a, b, c))


def test_a_repeated_erasure_records_nothing_new(store: Store) -> None:
    a = _customer(store, "phone:+37060000011", "e11")
    store.app.erasure.erase(a, actor="dpo", reason="objection")
    position = store.app.recorder.max_notification_id()

    again = store.app.erasure.erase(a, actor="dpo", reason="objection")

    assert again.customer_ids == (a,)
    assert again.newly_erased == ()
    assert again.addresses == ()  # nothing left to read in clear
    assert store.app.recorder.max_notification_id() == position


def test_the_erased_event_is_published_with_ids_and_a_code_only(store: Store) -> None:
    a = _customer(store, "phone:+37060000021", "e21")
    store.app.erasure.erase(a, actor="dpo", reason="legal_obligation")

    [erased] = [e for e in envelopes(store) if e.type == "customer.erased.v1"]

    assert erased.customer_id == a
    assert erased.erased is True
    assert erased.model_dump(mode="json")["data"] == {
        "customer_ids": [str(a)],
        "actor": "dpo",
        "reason": "legal_obligation",
    }


def test_unknown_customers_and_reasons_are_refused(store: Store) -> None:
    a = _customer(store, "phone:+37060000031", "e31")
    with pytest.raises(InvalidCommand):
        store.app.erasure.erase(a, actor="dpo", reason="because")
    with pytest.raises(NotFound):
        store.app.erasure.erase(UUID(int=7), actor="dpo", reason="objection")
    assert not store.cipher.is_erased(a)


def test_a_merge_reason_is_stored_encrypted_and_erased_with_the_customer(
    store: Store, settings: Settings
) -> None:
    a = _customer(store, "phone:+37060000041", "e41")
    b = _customer(store, "phone:+37060000042", "e42")
    store.app.identity.merge(a, b, actor="agent", reason="pažįstu balsą QM-41")
    store.app.identity.unmerge(b, actor="agent", reason="klaida QM-42")

    assert not any(b"QM-4" in state for state in raw_event_states(settings))
    shown = {e.type: e.data for e in envelopes(store) if e.customer_id == b}
    assert shown["customer.merged.v1"].reason == "pažįstu balsą QM-41"  # type: ignore[attr-defined]
    assert shown["customer.unmerged.v1"].reason == "klaida QM-42"  # type: ignore[attr-defined]

    store.app.erasure.erase(b, actor="dpo", reason="data_subject_request")

    shown = {e.type: e.data for e in envelopes(store) if e.customer_id == b}
    assert shown["customer.merged.v1"].reason == ""  # type: ignore[attr-defined]
    with pytest.raises(CustomerErased):
        store.app.identity.merge(a, b, actor="agent", reason="again")
