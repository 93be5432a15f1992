"""``GET /v1/search`` on both backends: messages, subjects, notes and customers found with and
without diacritics; the filters (kind, channel, direction, since/until, a customer's merge
group); newest first through an opaque cursor; a merged customer's hits name the group's root;
an erased customer is gone at once; one access-log entry per customer shown, never the query;
and properties: any q is a page or a 422, any recorded text is found by each of its words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.projections.search_text import words
from tests.support.api import ADMIN_TOKEN, Api, assert_error, unique

ACTION = "GET /v1/search"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def search(api: Api, q: str, token: str | None = ADMIN_TOKEN, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/search", params={"q": q, **params}, token=token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def joined(parts: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for p in parts)


def marked(parts: list[dict[str, Any]]) -> list[str]:
    return [p["text"] for p in parts if p["match"]]


def _history(api: Api) -> dict[str, Any]:
    """Ona (email, then SMS, merged), Petras (WhatsApp), a note on Ona's email thread."""
    mail = api.record(
        channel="email",
        address="email:ona.zemaityte@pavyzdys.lt",
        contact_name="Ona Žemaitytė",
        subject="Sugadinta siunta",
        text="Siuntinys atkeliavo sudaužytas, prašau grąžinti pinigus.",
        occurred_at=at(0),
    )
    sms = api.record(
        address="phone:+37060011111", text="Ar jau grąžinote pinigus?", occurred_at=at(2)
    )
    reply = api.record(
        address="phone:+37060011111",
        direction="outbound",
        text="Pinigus grąžinome vakar.",
        occurred_at=at(3),
    )
    other = api.record(
        channel="whatsapp",
        address="phone:+37060022222",
        contact_name="Petras Šimkus",
        text="Kur mano siuntinys? Grąžinkite pinigus!",
        occurred_at=at(1),
    )
    note = api.post(
        f"/v1/conversations/{mail['conversation_id']}/notes",
        json={"text": "Pinigai grąžinti per banką"},
    )
    assert note.status_code == 201, note.text
    merged = api.post(
        f"/v1/customers/{mail['customer_id']}/merge",
        json={"customer_id": sms["customer_id"], "reason": "same person"},
    )
    assert merged.status_code == 200, merged.text
    api.wait_caught_up()
    return {"mail": mail, "sms": sms, "reply": reply, "other": other, "note": note.json()}


def test_search_finds_what_was_said_with_and_without_diacritics(api: Api) -> None:
    h = _history(api)
    ona = h["mail"]["customer_id"]

    found = search(api, "pinigus")["items"]

    # newest first, every channel; the SMS and the reply are shown as Ona, the group's root
    assert [i["id"] for i in found] == [
        h["reply"]["message_id"],
        h["sms"]["message_id"],
        h["other"]["message_id"],
        h["mail"]["message_id"],
    ]
    first = found[0]
    assert first["kind"] == "message"
    assert first["customer_id"] == h["sms"]["customer_id"]
    assert first["customer"] == {"customer_id": ona, "display_name": "Ona Žemaitytė"}
    assert first["conversation_id"] == h["reply"]["conversation_id"]
    assert (first["channel"], first["direction"]) == ("sms", "outbound")
    assert first["snippet"] == [
        {"text": "Pinigus", "match": True},
        {"text": " grąžinome vakar.", "match": False},
    ]
    assert search(api, "grazinome")["items"] == search(api, "GRĄŽINOME")["items"]
    mail = found[-1]
    assert joined(mail["subject"]) == "Sugadinta siunta"
    assert marked(mail["snippet"]) == ["pinigus"]
    # subjects, notes, names and addresses
    kinds = {(i["kind"], i["id"]) for i in search(api, "sugadinta")["items"]}
    assert kinds == {
        ("message", h["mail"]["message_id"]),
        ("conversation", h["mail"]["conversation_id"]),
    }
    (note,) = search(api, "banka")["items"]
    assert (note["kind"], note["id"], note["channel"]) == ("note", h["note"]["note_id"], "email")
    (petras,) = search(api, "simkus", kind="customer")["items"]
    assert (petras["id"], marked(petras["subject"])) == (h["other"]["customer_id"], ["Šimkus"])
    (by_email,) = search(api, "ona.zemaityte@pavyzdys.lt")["items"]
    assert by_email["kind"] == "customer"
    assert marked(by_email["snippet"]) == ["ona", "zemaityte", "pavyzdys", "lt"]


def test_filters_narrow_the_hits(api: Api) -> None:
    h = _history(api)
    ona = h["mail"]["customer_id"]

    def ids(**params: Any) -> list[str]:
        return [i["id"] for i in search(api, "pinigus OR pinigai", **params)["items"]]

    assert ids(channel="whatsapp") == [h["other"]["message_id"]]
    assert ids(direction="outbound") == [h["reply"]["message_id"]]
    assert ids(kind="note") == [h["note"]["note_id"]]
    assert set(ids(kind=["note", "customer"])) == {h["note"]["note_id"]}
    assert ids(since=at(1), until=at(3)) == [h["sms"]["message_id"], h["other"]["message_id"]]
    # a customer's whole merge group, whichever member is named
    group = [h["reply"]["message_id"], h["sms"]["message_id"], h["mail"]["message_id"]]
    assert ids(customer_id=ona, kind="message") == group
    assert ids(customer_id=h["sms"]["customer_id"], kind="message") == group
    assert_error(
        api.get("/v1/search", params={"q": "x", "customer_id": str(uuid4())}), 404, "not_found"
    )
    assert_error(
        api.get("/v1/search", params={"q": "x", "since": at(2), "until": at(1)}),
        422,
        "invalid_range",
    )
    for bad in (
        {"channel": "pigeon"},
        {"direction": "up"},
        {"kind": "file"},
        {"since": "1700000000"},
    ):
        assert_error(api.get("/v1/search", params={"q": "x", **bad}), 422, "validation_error")


def test_pages_go_back_in_time_through_an_opaque_cursor(api: Api) -> None:
    for n in range(7):
        api.record(address="phone:+37060033333", text=f"žinutė numeris {n}", occurred_at=at(n))
    api.wait_caught_up()
    seen: list[str] = []
    cursor = None
    while True:
        page = search(api, "zinute", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [joined(i["snippet"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"žinutė numeris {n}" for n in reversed(range(7))]
    for bad in ("nope", "MjAyNS0wMy0wMVQxMjowMDowMCswMDowMHx4", str(uuid4())):
        assert_error(
            api.get("/v1/search", params={"q": "zinute", "cursor": bad}), 400, "invalid_cursor"
        )


def test_an_erased_customer_is_gone_from_search_at_once(api: Api) -> None:
    h = _history(api)
    ona = h["mail"]["customer_id"]
    assert search(api, "pinigus", customer_id=ona)["items"]

    erased = api.post(f"/v1/customers/{ona}/erase", json={"reason": "data_subject_request"})
    assert erased.status_code == 200, erased.text

    # no waiting for the views: the erasure purged them before it answered
    left = search(api, "pinigus OR pinigai OR zemaityte OR sugadinta OR 37060011111")["items"]
    assert [i["id"] for i in left] == [h["other"]["message_id"]]
    assert_error(
        api.get("/v1/search", params={"q": "x", "customer_id": ona}), 410, "customer_erased"
    )


def test_each_customer_shown_is_access_logged_and_the_query_is_not(api: Api) -> None:
    assert api.runtime is not None
    h = _history(api)
    _, agent = api.runtime.tokens.create("agent", "desk 3")
    ona, petras = h["mail"]["customer_id"], h["other"]["customer_id"]

    search(api, "pinigus", token=agent)  # Ona's group: 3 hits (two members); Petras: 1

    def entries(customer_id: str) -> list[tuple[str, str, int]]:
        response = api.get(f"/v1/customers/{customer_id}/access-log")
        assert response.status_code == 200, response.text
        assert "pinigus" not in response.text
        return [(e["action"], e["principal_name"], e["items"]) for e in response.json()["items"]]

    assert entries(ona) == [(ACTION, "desk 3", 3)]  # one entry for the group: 3 hits
    assert entries(petras) == [(ACTION, "desk 3", 1)]
    search(api, "niekur-nerasta", token=agent)  # nothing found: nothing read
    assert len(entries(petras)) == 1


_PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def test_any_query_is_a_page_or_a_422(api: Api) -> None:
    api.record(address="phone:+37060044444", text='Kaina: 5 € (su PVM) "akcija" -50% žąsų*')
    api.wait_caught_up()

    @_PROPERTY
    @given(q=st.text(max_size=220))
    @example(q='"')
    @example(q='NEAR(a b) OR ^c* AND -"d')
    @example(q="-žąsų")
    @example(q="'; DROP TABLE search_documents; --")
    @example(q="a:* | !b & (c <-> d)")
    @example(q="\x00žąsų")
    @example(q="*")
    @example(q="OR OR")
    def check(q: str) -> None:
        response = api.get("/v1/search", params={"q": q})
        if 1 <= len(q) <= 200 and words(q.replace("-", " -")):
            assert response.status_code in (200, 422), response.text
        else:
            assert response.status_code == 422, response.text
        if response.status_code == 422:
            assert response.json()["error"]["code"] in ("invalid_query", "validation_error")

    check()
    assert search(api, "zasu*")["items"]


def test_any_recorded_text_is_found_by_each_piece_of_it(api: Api) -> None:
    """Each piece of a message between spaces, searched as a phrase (as an agent pastes
    it), finds the message: documents and queries are cut into words alike."""
    customer = api.record(address="phone:+37060055555", text="pirmas")

    @_PROPERTY
    @given(text=st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=80))
    @example(text="İstanbul straße Ǆemal ﬁne x²y ①② école 0\U000101fe")
    @example(text="\U0001d518\U0001d52b\U0001d526 (Fraktur letters)")
    @example(text="Žąsų ąžuolėlis příliš žluťoučký kůň ďakujem Ľubomír pasūtījums ģimenē")
    @example(text='e\u0301cole a\u200bb foo_bar a©b "quoted" -minus star* OR')
    def check(text: str) -> None:
        recorded = api.record(address="phone:+37060055555", text=text, provider_message_id=unique())
        api.wait_caught_up()
        for piece in dict.fromkeys(text.split()):
            q = '"' + piece.replace('"', " ") + '"'
            if not words(q):
                continue
            found = search(api, q, customer_id=customer["customer_id"], limit=200)["items"]
            assert recorded["message_id"] in [i["id"] for i in found], piece

    check()
