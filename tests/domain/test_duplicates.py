"""Duplicate decisions and the identity rules around them, on the commands themselves: "not
the same person" on both customers and its undo (each recorded once), the blocklist aggregate
(one per hub, normalised, idempotent) that no automatic link passes, and the merge group size
limit, for agents' merges and for merges by a chat visitor's proof."""

from __future__ import annotations

from uuid import UUID

import pytest

from hub.domain.blocklist import BLOCKLIST_ID, IdentityBlocklist
from hub.domain.errors import Conflict, CustomerErased, InvalidCommand, NotFound
from hub.domain.model import Customer
from hub.store import Store
from tests.domain.helpers import stored_count, types
from tests.support.store import inbound

ONA = "phone:+37061234567"
ONA_EMAIL = "email:ona@pavyzdys.lt"
VISITOR = "chat:visitor-d1"


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here, not the backend."""
    return "sqlite"


def first_contact(store: Store, address: str, pid: str) -> UUID:
    channel = address.partition(":")[0].replace("phone", "sms")
    [recorded] = store.app.record_interactions([inbound(pid, channel=channel, address=address)])
    return recorded.customer_id


def customer(store: Store, customer_id: UUID) -> Customer:
    return store.app.read(lambda uow: uow.require(Customer, customer_id, "customer"))


# -- not the same person ---------------------------------------------------------------------


def test_a_dismissal_is_recorded_on_both_customers_once(store: Store) -> None:
    one, two = first_contact(store, ONA, "d1"), first_contact(store, ONA_EMAIL, "d2")

    decision = store.app.duplicates.dismiss(one, two, actor="desk")
    assert (decision.dismissed, decision.changed) == (True, True)
    assert customer(store, one).not_duplicates == [two]
    assert customer(store, two).not_duplicates == [one]
    assert types(store)["customer.duplicate_dismissed.v1"] == 2

    position = stored_count(store)
    assert store.app.duplicates.dismiss(two, one, actor="desk").changed is False
    assert stored_count(store) == position
    assert store.app.duplicates.dismissed(one) == [two]


def test_a_restore_undoes_a_dismissal_once(store: Store) -> None:
    one, two = first_contact(store, ONA, "r1"), first_contact(store, ONA_EMAIL, "r2")
    position = stored_count(store)
    assert store.app.duplicates.restore(one, two, actor="desk").changed is False
    assert stored_count(store) == position

    store.app.duplicates.dismiss(one, two, actor="desk")
    restored = store.app.duplicates.restore(two, one, actor="desk")
    assert (restored.dismissed, restored.changed) == (False, True)
    assert customer(store, one).not_duplicates == []
    assert customer(store, two).not_duplicates == []
    assert types(store)["customer.duplicate_restored.v1"] == 2


def test_a_dismissal_refuses_what_cannot_be(store: Store) -> None:
    one, two = first_contact(store, ONA, "x1"), first_contact(store, ONA_EMAIL, "x2")
    with pytest.raises(InvalidCommand):
        store.app.duplicates.dismiss(one, one, actor="desk")
    with pytest.raises(NotFound):
        store.app.duplicates.dismiss(one, UUID(int=7), actor="desk")
    store.app.identity.merge(one, two, actor="desk", reason="same")
    with pytest.raises(Conflict) as refused:
        store.app.duplicates.dismiss(two, one, actor="desk")
    assert refused.value.code == "same_group"
    third = first_contact(store, "phone:+37069999999", "x3")
    store.cipher._keys.destroy(third)
    store.cipher.forget(third)
    with pytest.raises(CustomerErased):
        store.app.duplicates.dismiss(one, third, actor="desk")


# -- the blocklist ---------------------------------------------------------------------------


def test_the_blocklist_is_one_aggregate_normalised_and_idempotent(store: Store) -> None:
    blocklist = store.app.duplicates.blocklist
    assert blocklist.stored() == []
    stored = blocklist.replace(
        ["phone:+370 600 00000", "EMAIL:Office@Imone.LT", "email:*@Spam.example"], actor="admin"
    )
    assert stored == ["email:*@spam.example", "email:office@imone.lt", "phone:+37060000000"]
    position = stored_count(store)
    assert blocklist.replace(list(reversed(stored)), actor="admin") == stored
    assert stored_count(store) == position
    found = store.app.read(lambda uow: uow.get(IdentityBlocklist, BLOCKLIST_ID))
    assert found is not None
    assert found.changed_by == "admin"
    effective = blocklist.effective()
    assert effective.blocks("email:office@imone.lt")
    assert effective.blocks("email:anyone@spam.example")
    assert effective.blocks("email:info@kavine.lt")  # built in
    assert not effective.blocks("email:ona@pavyzdys.lt")
    with pytest.raises(InvalidCommand) as refused:
        blocklist.replace(["phone:+370 600 00000", "office"], actor="admin")
    assert refused.value.details == {"index": 1}
    assert blocklist.stored() == stored


def test_configured_entries_count_without_being_stored(store: Store) -> None:
    store.app.identity.configure(
        blocklist=["email:Desk@Imone.lt", "phone:860000000"], default_region="LT"
    )
    effective = store.app.duplicates.blocklist.effective()
    assert effective.blocks("email:desk@imone.lt")
    assert effective.blocks("phone:+37060000000")
    assert store.app.duplicates.blocklist.stored() == []


def test_a_blocklisted_address_is_never_linked_automatically(store: Store) -> None:
    owner = first_contact(store, "email:info@kavine.lt", "b1")
    link = store.app.identity.link_address
    position = stored_count(store)

    proven = link(VISITOR, "email:info@kavine.lt", verified=True, reason="verification")
    assert proven.outcome == "refused"
    visitor = proven.customer_id
    assert visitor != owner
    assert customer(store, visitor).merged_into is None
    assert types(store)["customer.merged.v1"] == 0
    store.app.duplicates.blocklist.replace(["email:shared@imone.lt"], actor="admin")
    unowned = link(VISITOR, "email:shared@imone.lt", verified=False, reason="chat_visitor")
    assert unowned.outcome == "refused"
    assert len(customer(store, visitor).address_ids) == 1, "nothing linked"
    assert types(store)["customer.identity_linked.v1"] == 0
    assert stored_count(store) > position  # only the visitor's first contact and the list


# -- the size of a merge group ---------------------------------------------------------------


def test_a_merge_over_the_group_size_limit_is_refused_with_the_sizes(store: Store) -> None:
    store.app.identity.configure(max_group_size=3)
    people = [first_contact(store, f"phone:+3706100020{n}", f"g{n}") for n in range(5)]
    store.app.identity.merge(people[0], people[1], actor="desk", reason="same")
    store.app.identity.merge(people[0], people[2], actor="desk", reason="same")
    store.app.identity.merge(people[3], people[4], actor="desk", reason="same")
    position = stored_count(store)

    with pytest.raises(Conflict) as refused:
        store.app.identity.merge(people[1], people[3], actor="desk", reason="same")
    assert refused.value.code == "merge_group_too_large"
    assert refused.value.status == 409
    assert "5 customers (3 + 2)" in refused.value.message
    assert refused.value.details["limit"] == 3
    assert stored_count(store) == position
    # already one group: still no error, nothing new
    assert store.app.identity.merge(people[2], people[1], actor="desk", reason="x").changed is False


def test_a_visitors_proof_that_would_make_a_group_too_large_merges_nothing(store: Store) -> None:
    store.app.identity.configure(max_group_size=2)
    owner = first_contact(store, ONA_EMAIL, "v1")
    other = first_contact(store, ONA, "v2")
    store.app.identity.merge(owner, other, actor="desk", reason="same")
    visitor = first_contact(store, VISITOR, "v3")
    position = stored_count(store)

    found = store.app.identity.link_address(
        VISITOR, ONA_EMAIL, verified=True, reason="verification"
    )
    assert (found.outcome, found.customer_id) == ("refused", visitor)
    assert customer(store, visitor).merged_into is None
    assert stored_count(store) == position
