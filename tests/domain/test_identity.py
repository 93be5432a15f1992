"""The identity rules of hub.domain.identity, on the commands themselves (no HTTP): merges go to
the root of a group and are undone exactly, an address belongs to one customer, and an address
another customer owns is linked only with proof (then the visitor's group joins the owner's)."""

from __future__ import annotations

from uuid import UUID

import pytest

from hub.domain.errors import Conflict, CustomerErased, InvalidCommand
from hub.domain.model import Customer
from hub.store import Store
from tests.domain.helpers import envelopes, types
from tests.support.store import inbound

ALICE_PHONE = "phone:+4915112345678"
ALICE_EMAIL = "email:alice@example.com"
BOB_PHONE = "phone:+4915199999999"
CAROL_PHONE = "phone:+4915177777777"


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here, not the backend."""
    return "sqlite"


def first_contact(store: Store, address: str, pid: str) -> UUID:
    channel = "email" if address.startswith("email:") else "sms"
    [recorded] = store.app.record_interactions([inbound(pid, channel=channel, address=address)])
    return recorded.customer_id


def customer(store: Store, customer_id: UUID) -> Customer:
    return store.app.read(lambda uow: uow.require(Customer, customer_id, "customer"))


def erase(store: Store, customer_id: UUID) -> None:
    store.cipher._keys.destroy(customer_id)
    store.cipher.forget(customer_id)


# -- merge and unmerge -----------------------------------------------------------------------


def test_a_merge_points_the_merged_customer_at_the_survivor(store: Store) -> None:
    alice, bob = first_contact(store, ALICE_PHONE, "A1"), first_contact(store, BOB_PHONE, "B1")
    result = store.app.identity.merge(alice, bob, actor="ann", reason="same person")
    assert (result.customer_id, result.merged_customer_id, result.changed) == (alice, bob, True)
    assert customer(store, bob).merged_into == alice
    assert customer(store, alice).merged_into is None
    [merged] = [e for e in envelopes(store) if e.type == "customer.merged.v1"]
    assert merged.customer_id == bob
    assert merged.data.into_customer_id == alice  # type: ignore[attr-defined]
    assert (merged.data.actor, merged.data.reason) == ("ann", "same person")  # type: ignore[attr-defined]


def test_a_merge_goes_to_the_root_of_the_survivors_group(store: Store) -> None:
    alice, bob = first_contact(store, ALICE_PHONE, "A1"), first_contact(store, BOB_PHONE, "B1")
    carol = first_contact(store, CAROL_PHONE, "C1")
    store.app.identity.merge(alice, bob, actor="ann", reason="agent")
    result = store.app.identity.merge(bob, carol, actor="ann", reason="agent")
    assert result.customer_id == alice
    assert customer(store, carol).merged_into == alice


def test_merging_one_group_again_changes_nothing(store: Store) -> None:
    alice, bob = first_contact(store, ALICE_PHONE, "A1"), first_contact(store, BOB_PHONE, "B1")
    store.app.identity.merge(alice, bob, actor="ann", reason="agent")
    before = types(store)
    assert store.app.identity.merge(alice, bob, actor="ann", reason="agent").changed is False
    assert store.app.identity.merge(bob, alice, actor="ann", reason="agent").changed is False
    assert types(store) == before


def test_what_cannot_be_merged_is_refused(store: Store) -> None:
    alice, bob = first_contact(store, ALICE_PHONE, "A1"), first_contact(store, BOB_PHONE, "B1")
    carol = first_contact(store, CAROL_PHONE, "C1")
    with pytest.raises(InvalidCommand):
        store.app.identity.merge(alice, alice, actor="ann", reason="agent")
    store.app.identity.merge(alice, bob, actor="ann", reason="agent")
    with pytest.raises(Conflict) as already:
        store.app.identity.merge(carol, bob, actor="ann", reason="agent")
    assert already.value.code == "already_merged"
    erase(store, carol)
    with pytest.raises(CustomerErased):
        store.app.identity.merge(alice, carol, actor="ann", reason="agent")


def test_an_unmerge_clears_the_pointer_and_only_once(store: Store) -> None:
    alice, bob = first_contact(store, ALICE_PHONE, "A1"), first_contact(store, BOB_PHONE, "B1")
    store.app.identity.merge(alice, bob, actor="ann", reason="agent")
    result = store.app.identity.unmerge(bob, actor="ann", reason="mistake")
    assert (result.customer_id, result.merged_customer_id, result.changed) == (alice, bob, True)
    assert customer(store, bob).merged_into is None
    again = store.app.identity.unmerge(bob, actor="ann", reason="mistake")
    assert (again.customer_id, again.changed) == (bob, False)
    assert types(store)["customer.unmerged.v1"] == 1


def test_an_erased_customer_can_still_be_unmerged(store: Store) -> None:
    alice, bob = first_contact(store, ALICE_PHONE, "A1"), first_contact(store, BOB_PHONE, "B1")
    store.app.identity.merge(alice, bob, actor="ann", reason="agent")
    erase(store, bob)
    assert store.app.identity.unmerge(bob, actor="ann", reason="erasure").changed is True


# -- linking addresses -----------------------------------------------------------------------


def test_an_address_nobody_owns_is_linked_verified_or_not(store: Store) -> None:
    alice = first_contact(store, ALICE_PHONE, "A1")
    link = store.app.identity.link_address
    result = link(ALICE_PHONE, ALICE_EMAIL, verified=False, reason="chat_visitor")
    assert (result.outcome, result.customer_id) == ("linked", alice)
    assert first_contact(store, ALICE_EMAIL, "<m1@example.com>") == alice
    assert store.app.address_id(ALICE_EMAIL) in customer(store, alice).address_ids
    assert store.app.address_id(ALICE_EMAIL) not in customer(store, alice).verified_address_ids


def test_an_address_of_the_same_group_is_marked_verified_once(store: Store) -> None:
    alice = first_contact(store, ALICE_PHONE, "A1")
    link = store.app.identity.link_address
    link(ALICE_PHONE, ALICE_EMAIL, verified=False, reason="chat_visitor")
    assert link(ALICE_PHONE, ALICE_EMAIL, verified=False, reason="again").outcome == "unchanged"
    assert link(ALICE_PHONE, ALICE_EMAIL, verified=True, reason="code").outcome == "verified"
    assert link(ALICE_PHONE, ALICE_EMAIL, verified=True, reason="code").outcome == "unchanged"
    assert store.app.address_id(ALICE_EMAIL) in customer(store, alice).verified_address_ids


def test_an_address_another_customer_owns_needs_proof(store: Store) -> None:
    alice = first_contact(store, ALICE_EMAIL, "<m1@example.com>")
    visitor = first_contact(store, BOB_PHONE, "B1")
    before = types(store)
    unproven = store.app.identity.link_address(
        BOB_PHONE, ALICE_EMAIL, verified=False, reason="chat_visitor"
    )
    assert (unproven.outcome, unproven.customer_id) == ("needs_verification", visitor)
    assert types(store) == before  # nothing recorded

    proven = store.app.identity.link_address(BOB_PHONE, ALICE_EMAIL, verified=True, reason="code")
    assert (proven.outcome, proven.customer_id) == ("merged", alice)
    assert customer(store, visitor).merged_into == alice
    assert store.app.address_id(ALICE_EMAIL) in customer(store, alice).verified_address_ids


def test_linking_from_a_new_address_registers_its_customer(store: Store) -> None:
    result = store.app.identity.link_address(
        "chat:visitor-1", ALICE_EMAIL, verified=False, reason="chat_visitor", display_name="Al"
    )
    assert result.outcome == "linked"
    assert first_contact(store, ALICE_EMAIL, "<m1@example.com>") == result.customer_id
    [created] = [e for e in envelopes(store) if e.type == "customer.created.v1"]
    assert created.customer_id == result.customer_id
    assert created.data.display_name == "Al"  # type: ignore[attr-defined]
    assert created.data.address == "chat:visitor-1"  # type: ignore[attr-defined]


def test_an_erased_owners_address_goes_to_the_one_linking_it(store: Store) -> None:
    alice = first_contact(store, ALICE_EMAIL, "<m1@example.com>")
    erase(store, alice)
    bob = first_contact(store, BOB_PHONE, "B1")
    result = store.app.identity.link_address(BOB_PHONE, ALICE_EMAIL, verified=False, reason="x")
    assert (result.outcome, result.customer_id) == ("linked", bob)
    assert first_contact(store, ALICE_EMAIL, "<m2@example.com>") == bob
