"""Business activity in the event log (``hub.domain.activities``), on SQLite and PostgreSQL:
what an activity may say (the field each refusal names), recorded once per (source,
source_id), the customer found by id, by address (an unknown one registers a customer), by
an external id mapped the first time it comes with one of those, and the personal fields
encrypted with the customer's key, so an erasure makes them unreadable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from hub.config import Settings
from hub.domain.activities import ActivitySpec, activity_id, check_activity
from hub.domain.errors import Conflict, CustomerErased, InvalidCommand, NotFound
from hub.events import ActivityRecorded
from hub.store import Store
from tests.domain.helpers import envelopes, stored_count, types
from tests.support.store import T0, inbound, raw_event_states


def raw(**extra: Any) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "source": "shop",
        "source_id": "order-1042-placed",
        "occurred_at": T0,
        "address": "email:Alice@Example.com",
        "amount": "129.00",
        "currency": "EUR",
        "reference": "#1042",
        "title": "2 x running shoes",
        "description": "Delivery to the pick-up point",
        "url": "https://shop.example.com/orders/1042",
        "metadata": {"items": 2, "coupon": "SPRING"},
    } | extra


def spec(**extra: Any) -> ActivitySpec:
    return check_activity(raw(**extra))


def _customer(store: Store, address: str, pid: str) -> UUID:
    channel = "email" if address.startswith("email:") else "sms"
    [recorded] = store.app.record_interactions([inbound(pid, address=address, channel=channel)])
    return recorded.customer_id


def _published(store: Store) -> list[ActivityRecorded]:
    return [e for e in envelopes(store) if isinstance(e, ActivityRecorded)]


# -- what an activity may say --------------------------------------------------------------


def test_a_valid_activity_comes_back_checked_with_its_address_normalised() -> None:
    checked = spec()
    assert checked.address == "email:alice@example.com"
    assert (checked.amount, checked.currency, checked.type) == ("129.00", "EUR", "order.placed")
    assert checked.id == activity_id("shop", "order-1042-placed")
    assert checked.id != activity_id("billing", "order-1042-placed")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "order.shipped"}, "type"),
        ({"type": "custom"}, "name"),
        ({"type": "custom", "name": "trial extended"}, "name"),
        ({"name": "extra"}, "name"),
        ({"source": ""}, "source"),
        ({"source": "my shop"}, "source"),
        ({"source_id": ""}, "source_id"),
        ({"source_id": "x" * 201}, "source_id"),
        ({"occurred_at": T0.replace(tzinfo=None)}, "occurred_at"),
        ({"occurred_at": "2024-05-01"}, "occurred_at"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.23456"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "007"}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": None}, "currency"),
        ({"amount": None}, "amount"),
        ({"address": "phone:12"}, "address"),
        ({"customer_id": UUID(int=1)}, "address"),
        ({"address": None}, "customer_id"),
        ({"external_id": {"system": "shop", "id": ""}}, "external_id.id"),
        ({"external_id": {"system": "", "id": "C-1"}}, "external_id.system"),
        ({"external_id": "C-1"}, "external_id"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"title": "x\x00y"}, "title"),
        ({"reference": "\ud800"}, "reference"),
        ({"description": "x" * 2001}, "description"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {"n": 2**70}}, "metadata"),
        ({"metadata": {"k": "x" * 9000}}, "metadata"),
    ],
)
def test_a_refusal_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommand) as refused:
        spec(**changes)
    assert refused.value.details["field"] == field


def test_a_time_after_the_latest_allowed_is_refused() -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_activity(raw(), latest=T0 - timedelta(seconds=1))
    assert refused.value.details["field"] == "occurred_at"
    assert check_activity(raw(), latest=T0).occurred_at == T0


def test_a_custom_activity_and_one_without_amount_are_fine() -> None:
    checked = spec(type="custom", name="trial.extended", amount=None, currency=None)
    assert (checked.name, checked.amount, checked.currency) == ("trial.extended", None, None)


# -- recording -----------------------------------------------------------------------------


def test_an_unknown_address_registers_a_customer_as_a_first_contact_does(store: Store) -> None:
    recorded = store.app.activities.record(spec())

    assert not recorded.duplicate
    assert recorded.activity_id == activity_id("shop", "order-1042-placed")
    counts = types(store)
    assert counts["customer.created.v1"] == 1
    assert counts["activity.recorded.v1"] == 1
    [created] = [e for e in envelopes(store) if e.type == "customer.created.v1"]
    assert created.customer_id == recorded.customer_id
    assert created.data.address == "email:alice@example.com"  # type: ignore[attr-defined]
    # The address is claimed: a message from it later joins the same customer.
    assert _customer(store, "email:alice@example.com", "a-1") == recorded.customer_id


def test_the_same_activity_again_records_nothing(store: Store) -> None:
    first = store.app.activities.record(spec())
    count = stored_count(store)

    again = store.app.activities.record(spec(title="changed", amount="1.00"))
    in_batch = store.app.activities.record_many([spec(), spec()])

    assert again == type(first)(first.activity_id, first.customer_id, duplicate=True)
    assert all(r == again for r in in_batch)
    assert stored_count(store) == count


def test_the_first_of_a_pair_in_one_batch_is_recorded_the_second_is_a_duplicate(
    store: Store,
) -> None:
    one, two = store.app.activities.record_many([spec(), spec(title="again")])
    assert (one.duplicate, two.duplicate) == (False, True)  # type: ignore[union-attr]
    assert len(_published(store)) == 1


def test_the_customer_is_found_by_id_and_by_an_address_it_has(store: Store) -> None:
    cid = _customer(store, "phone:+37060000101", "act-1")

    by_id = store.app.activities.record(spec(address=None, customer_id=cid, source_id="a"))
    by_address = store.app.activities.record(
        spec(address="+370 600 00101", source_id="b")  # normalised like any address
    )

    assert by_id.customer_id == by_address.customer_id == cid
    assert types(store)["customer.created.v1"] == 1


def test_an_unknown_customer_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.app.activities.record(spec(address=None, customer_id=UUID(int=5)))
    assert not _published(store)


def test_an_external_id_maps_the_first_time_then_finds_the_customer_alone(
    store: Store,
) -> None:
    ref = {"system": "shop", "id": "C-1042"}
    with pytest.raises(NotFound) as unknown:
        store.app.activities.record(spec(address=None, external_id=ref, source_id="0"))
    assert "C-1042" in unknown.value.message
    cid = _customer(store, "email:bob@example.com", "act-2")

    first = store.app.activities.record(spec(address=None, customer_id=cid, external_id=ref))
    alone = store.app.activities.record(spec(address=None, external_id=ref, source_id="2"))
    other_system = {"system": "billing", "id": "C-1042"}
    with pytest.raises(NotFound):
        store.app.activities.record(spec(address=None, external_id=other_system, source_id="3"))

    assert first.customer_id == alone.customer_id == cid
    # Neither the external id nor the source's id is in any stored event in clear.
    assert len(_published(store)) == 2


def test_an_external_id_of_another_customer_is_a_conflict(store: Store) -> None:
    ref = {"system": "shop", "id": "C-7"}
    a = _customer(store, "email:a@example.com", "act-3")
    b = _customer(store, "email:b@example.com", "act-4")
    store.app.activities.record(spec(address=None, customer_id=a, external_id=ref))

    with pytest.raises(Conflict) as taken:
        store.app.activities.record(
            spec(address=None, customer_id=b, external_id=ref, source_id="other")
        )
    assert taken.value.code == "external_id_taken"

    # Once they are merged, both are the one person the external id names.
    store.app.identity.merge(a, b, actor="agent", reason="same")
    merged = store.app.activities.record(
        spec(address=None, customer_id=b, external_id=ref, source_id="other")
    )
    assert merged.customer_id == b


def test_one_refused_item_of_a_batch_leaves_the_others_recorded(store: Store) -> None:
    cid = _customer(store, "email:c@example.com", "act-5")
    results = store.app.activities.record_many(
        [
            spec(address=None, customer_id=cid, source_id="ok-1"),
            spec(address=None, customer_id=UUID(int=9), source_id="bad"),
            spec(address=None, external_id={"system": "x", "id": "nobody"}, source_id="b2"),
            spec(source_id="ok-2", address="email:new@example.com"),
        ]
    )

    assert [type(r).__name__ for r in results] == [
        "ActivityRecorded",
        "NotFound",
        "NotFound",
        "ActivityRecorded",
    ]
    assert len(_published(store)) == 2


def test_personal_fields_are_encrypted_and_an_erasure_makes_them_unreadable(
    store: Store, settings: Settings
) -> None:
    ref = {"system": "shop", "id": "CUST-SECRET-77"}
    recorded = store.app.activities.record(
        spec(
            reference="REF-SECRET-1",
            title="TITLE-SECRET",
            description="DESC-SECRET",
            url="https://shop.example.com/URL-SECRET",
            metadata={"note": "META-SECRET"},
            source_id="SRCID-SECRET",
            external_id=ref,
        )
    )
    states = raw_event_states(settings)
    for secret in (b"SECRET", b"alice@example.com"):
        assert not any(secret in s for s in states), secret
    [shown] = _published(store)
    assert shown.data.reference == "REF-SECRET-1"
    assert shown.data.source_id == "SRCID-SECRET"
    assert shown.data.metadata == {"note": "META-SECRET"}
    assert (shown.data.amount, shown.data.currency, shown.data.source) == ("129.00", "EUR", "shop")

    store.app.erasure.erase(recorded.customer_id, actor="dpo", reason="data_subject_request")

    [erased] = _published(store)
    assert erased.erased
    d = erased.data
    assert (d.reference, d.title, d.description, d.url, d.source_id) == (None,) * 5
    assert d.metadata == {}
    # What reports count stays.
    assert (d.type, d.amount, d.currency, d.source) == ("order.placed", "129.00", "EUR", "shop")
    with pytest.raises(CustomerErased):
        store.app.activities.record(spec(address=None, external_id=ref, source_id="later"))
    with pytest.raises(CustomerErased):
        store.app.activities.record(
            spec(address=None, customer_id=recorded.customer_id, source_id="later")
        )
    # The address is anyone's again: a new customer, and the external id follows it.
    again = store.app.activities.record(spec(source_id="later", external_id=ref))
    assert again.customer_id != recorded.customer_id
    alone = store.app.activities.record(spec(address=None, external_id=ref, source_id="l2"))
    assert alone.customer_id == again.customer_id
