"""The demo dataset ``make run`` loads into an empty hub: invented people, clearly labelled.

One person writes by SMS and then by WhatsApp from the same phone, so their timeline shows
both, and once by email, which an agent merged into the same customer; others use email (a
threaded exchange), web chat (the visitor gave an email) and the generic API channel.

Behind them, so the Reports page and the queue's due times have something to show: a
business calendar and two SLA policies, six weeks of answered conversations (seeded, so every
load is alike relative to its day) and a few conversations still waiting for an answer.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hub.demo.surveys import record_survey_history, save_surveys
from hub.domain.activities import check_activity
from hub.events import Attachment, InboundInteraction
from hub.events.inbound import InboundSource
from hub.runtime import Runtime
from hub.runtime.sandbox import sandbox_of

DEMO_NOTE = "Demo data: invented people and messages, not real customers."


MARIA = "phone:+15550101001"
JAMES = "email:james.okafor@example.com"
CHEN = "chat:visitor-7f3a9c"
PRIYA = "email:priya.shah@example.org"
MARIA_EMAIL = "email:maria.garcia@example.net"
CHEN_EMAIL = "email:chen.wei@example.com"

#: The demo's people as the sandbox's simulated customers (``/sandbox/``): who can write back.
SANDBOX_CONTACTS = (
    ("Maria Garcia (demo)", MARIA),
    ("Maria Garcia (demo)", MARIA_EMAIL),
    ("James Okafor (demo)", JAMES),
    ("Chen Wei (demo)", CHEN_EMAIL),
    ("Priya Shah (demo)", PRIYA),
)

# (channel, direction, address, provider message id, days and hours ago, text, other fields)
_SCRIPT: list[tuple[str, str, str, str, tuple[float, float], str, dict[str, Any]]] = [
    # Maria: SMS, then WhatsApp from the same phone -> one customer, one timeline.
    (
        "sms",
        "inbound",
        MARIA,
        "demo-sms-1",
        (3, 5),
        "Hi, my order #1042 still hasn't arrived. Can you check?",
        {"contact_name": "Maria Garcia (demo)"},
    ),
    (
        "sms",
        "outbound",
        MARIA,
        "demo-sms-2",
        (3, 4),
        "Sorry about that, Maria! It left our warehouse on Monday; tracking: DEMO123.",
        {},
    ),
    (
        "whatsapp",
        "inbound",
        MARIA,
        "demo-wa-1",
        (1, 2),
        "It came, but the box was damaged. Photo attached.",
        {"attachments": (Attachment(name="parcel.jpg", content_type="image/jpeg", size=184_223),)},
    ),
    (
        "whatsapp",
        "outbound",
        MARIA,
        "demo-wa-2",
        (1, 1),
        "Thanks for the photo. A replacement is on its way at no cost.",
        {},
    ),
    # James: an email exchange threaded by In-Reply-To / References.
    (
        "email",
        "inbound",
        JAMES,
        "<demo-1@mail.example.com>",
        (6, 0),
        "Hello, the invoice lists two licences but we bought one.",
        {"subject": "Question about invoice INV-2291", "contact_name": "James Okafor (demo)"},
    ),
    (
        "email",
        "outbound",
        JAMES,
        "<demo-2@hub.example.com>",
        (5, 20),
        "Hi James, you're right - a corrected invoice is attached.",
        {
            "subject": "Re: Question about invoice INV-2291",
            "thread_ref": "<demo-1@mail.example.com>",
            "attachments": (
                Attachment(
                    name="INV-2291-corrected.pdf", content_type="application/pdf", size=48_911
                ),
            ),
        },
    ),
    (
        "email",
        "inbound",
        JAMES,
        "<demo-3@mail.example.com>",
        (5, 18),
        "Perfect, thank you!\n\n> Hi James, you're right - a corrected invoice...",
        {
            "subject": "Re: Question about invoice INV-2291",
            "thread_ref": "<demo-2@hub.example.com>",
            "references": ("<demo-1@mail.example.com>", "<demo-2@hub.example.com>"),
        },
    ),
    # Chen: web chat.
    (
        "chat",
        "inbound",
        CHEN,
        "demo-chat-1",
        (0, 3),
        "Do you ship to Canada?",
        {"contact_name": "Chen Wei (demo)", "metadata": {"demo": True, "language": "en-CA"}},
    ),
    (
        "chat",
        "outbound",
        CHEN,
        "demo-chat-2",
        (0, 2.9),
        "We do! Delivery takes 5-7 business days.",
        {},
    ),
    # Maria again, by email: a second customer until an agent merges the two.
    (
        "email",
        "inbound",
        MARIA_EMAIL,
        "<demo-maria-1@mail.example.net>",
        (0, 20),
        "Following up by email on order #1042: the replacement is fine, thank you!",
        {
            "subject": "Order #1042",
            "contact_name": "Maria Garcia (demo)",
            "metadata": {"demo": True, "language": "es"},
        },
    ),
    # Priya: the generic API channel (a web form posted by another system).
    (
        "api",
        "inbound",
        PRIYA,
        "demo-form-881",
        (0, 1),
        "We'd like a demo for a team of 40 agents.",
        {
            "subject": "Demo request",
            "contact_name": "Priya Shah (demo)",
            "metadata": {"demo": True, "form": "contact-sales"},
        },
    ),
]


# -- Service levels and six weeks of history ------------------------------------------------

ACTOR = "demo"
TEAM_ZONE = "Europe/Vilnius"
#: Saved as ``default``: the calendar both policies, and anything they do not cover, count in.
CALENDAR: dict[str, Any] = {
    "time_zone": TEAM_ZONE,
    "hours": {
        day: [{"start": "09:00", "end": "17:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
    },
    "holidays": {"country": "LT", "subdivision": None},
}
POLICIES: dict[str, dict[str, Any]] = {
    "standard": {
        "calendar": "default",
        "first_response_minutes": 60,
        "next_response_minutes": 240,
        "resolution_minutes": 2880,
        "priority": 100,
        "description": "Every conversation (demo)",
    },
    "vip": {
        "calendar": "default",
        "first_response_minutes": 30,
        "next_response_minutes": 120,
        "tags": ["vip"],
        "priority": 10,
        "description": "Customers tagged vip (demo)",
    },
}
HISTORY_SEED = 20260601
HISTORY_DAYS = 42
AGENTS = ("agent.sam (demo)", "agent.lee (demo)", "agent.rasa (demo)")


@dataclass(frozen=True, slots=True)
class _Story:
    """One exchange in the customer's language: ``{order}`` is an order number."""

    subject: str
    ask: str
    answer: str
    follow_up: str
    follow_answer: str


# The customers of the history, by language: one conversation each.
_PEOPLE: dict[str, tuple[str, ...]] = {
    "lt": (
        "Žydrūnė Ąžuolaitė",
        "Rūta Žemaitytė",
        "Gintarė Šimkutė",
        "Vytautas Kazlauskas",
        "Mindaugas Jankūnas",
        "Darius Čepulis",
        "Tomas Žukauskas",
        "Aušra Paulauskienė",
        "Dovilė Šeštokaitė",
        "Kęstutis Bružas",
        "Eglė Vaitkutė",
        "Jūratė Čiurlionytė",
    ),
    "cs": (
        "Jiří Dvořák",
        "Tereza Nováková",
        "Petr Černý",
        "Kateřina Svobodová",
        "Lukáš Procházka",
        "Zuzana Kučerová",
        "Tomáš Veselý",
        "Markéta Horáková",
        "Ondřej Růžička",
        "Barbora Němcová",
        "Jan Šimek",
        "Lenka Pokorná",
    ),
    "sk": (
        "Ľubica Šťastná",
        "Peter Kováč",
        "Mária Horváthová",
        "Ján Baláž",
        "Katarína Tóthová",
        "Martin Lukáč",
        "Jana Vargová",
        "Michal Šimko",
        "Andrea Čiernová",
        "Tomáš Ďurica",
        "Lucia Ľuptáková",
        "Matúš Kráľ",
    ),
    "lv": (
        "Kārlis Bērziņš",
        "Ilze Kalniņa",
        "Jānis Ozoliņš",
        "Līga Liepiņa",
        "Andris Krūmiņš",
        "Inese Zariņa",
        "Māris Vītols",
        "Dace Pētersone",
        "Edgars Jēkabsons",
        "Laura Kļaviņa",
        "Raivis Šmits",
        "Agnese Ķēniņa",
    ),
}

_STORIES: dict[str, tuple[_Story, ...]] = {
    "lt": (
        _Story(
            "Užsakymas #{order}",
            "Sveiki, užsakymas #{order} dar neatvyko. Gal galite patikrinti?",
            "Laba diena! Siunta pakeliui, sekimo numeris DEMO{order}.",
            "Ačiū. O kada tiksliai atvyks?",
            "Kurjeris pristatys rytoj iki 18 val.",
        ),
        _Story(
            "Prekės grąžinimas",
            "Noriu grąžinti prekę, netiko dydis.",
            "Žinoma! Grąžinimo lipduką išsiuntėme el. paštu.",
            "Gavau, ačiū!",
            "Prašom, geros dienos!",
        ),
        _Story(
            "Pristatymo adresas",
            "Ar galiu pakeisti užsakymo #{order} pristatymo adresą?",
            "Taip, adresą pakeitėme. Siunta keliaus nauju adresu.",
            "O ar galima pristatyti po 17 val.?",
            "Taip, kurjeriui pažymėjome vakarinį pristatymą.",
        ),
        _Story(
            "Sąskaita",
            "Sąskaitoje nurodytas neteisingas įmonės kodas.",
            "Atsiprašome! Pataisytą sąskaitą ką tik išsiuntėme.",
            "Dabar viskas gerai, ačiū.",
            "Puiku, gražios dienos!",
        ),
    ),
    "cs": (
        _Story(
            "Objednávka #{order}",
            "Dobrý den, objednávka #{order} ještě nedorazila. Můžete to zkontrolovat?",
            "Dobrý den, zásilka je na cestě, sledovací číslo DEMO{order}.",
            "Děkuji. Kdy přesně dorazí?",
            "Kurýr ji doručí zítra do 18:00.",
        ),
        _Story(
            "Vrácení zboží",
            "Chci vrátit zboží, nesedí mi velikost.",
            "Samozřejmě! Štítek pro vrácení jsme vám poslali e-mailem.",
            "Dorazil, děkuji!",
            "Rádi jsme pomohli, hezký den!",
        ),
        _Story(
            "Adresa doručení",
            "Můžu změnit adresu doručení objednávky #{order}?",
            "Ano, adresu jsme změnili. Zásilka půjde na novou adresu.",
            "A šlo by doručit až po 17. hodině?",
            "Ano, kurýrovi jsme zadali večerní doručení.",
        ),
        _Story(
            "Faktura",
            "Na faktuře je špatné IČO.",
            "Omlouváme se! Opravenou fakturu jsme vám právě poslali.",
            "Teď je vše v pořádku, děkuji.",
            "Výborně, hezký den!",
        ),
    ),
    "sk": (
        _Story(
            "Objednávka #{order}",
            "Dobrý deň, objednávka #{order} ešte neprišla. Môžete to skontrolovať?",
            "Dobrý deň, zásielka je na ceste, sledovacie číslo DEMO{order}.",
            "Ďakujem. Kedy presne príde?",
            "Kuriér ju doručí zajtra do 18:00.",
        ),
        _Story(
            "Vrátenie tovaru",
            "Chcem vrátiť tovar, nesedí mi veľkosť.",
            "Samozrejme! Štítok na vrátenie sme vám poslali e-mailom.",
            "Prišiel, ďakujem!",
            "Radi sme pomohli, pekný deň!",
        ),
        _Story(
            "Adresa doručenia",
            "Môžem zmeniť adresu doručenia objednávky #{order}?",
            "Áno, adresu sme zmenili. Zásielka pôjde na novú adresu.",
            "A dá sa doručiť až po 17. hodine?",
            "Áno, kuriérovi sme zadali večerné doručenie.",
        ),
        _Story(
            "Faktúra",
            "Na faktúre je nesprávne IČO.",
            "Ospravedlňujeme sa! Opravenú faktúru sme vám práve poslali.",
            "Teraz je všetko v poriadku, ďakujem.",
            "Výborne, pekný deň!",
        ),
    ),
    "lv": (
        _Story(
            "Pasūtījums #{order}",
            "Labdien, pasūtījums #{order} vēl nav atnācis. Vai varat pārbaudīt?",
            "Labdien! Sūtījums ir ceļā, izsekošanas numurs DEMO{order}.",
            "Paldies. Kad tieši tas pienāks?",
            "Kurjers to piegādās rīt līdz plkst. 18:00.",
        ),
        _Story(
            "Preces atgriešana",
            "Vēlos atgriezt preci, neder izmērs.",
            "Protams! Atgriešanas uzlīmi nosūtījām e-pastā.",
            "Saņēmu, paldies!",
            "Lūdzu, jauku dienu!",
        ),
        _Story(
            "Piegādes adrese",
            "Vai varu mainīt pasūtījuma #{order} piegādes adresi?",
            "Jā, adresi nomainījām. Sūtījums tiks piegādāts uz jauno adresi.",
            "Vai var piegādāt pēc plkst. 17?",
            "Jā, kurjeram norādījām vakara piegādi.",
        ),
        _Story(
            "Rēķins",
            "Rēķinā ir nepareizs uzņēmuma reģistrācijas numurs.",
            "Atvainojamies! Laboto rēķinu tikko nosūtījām.",
            "Tagad viss kārtībā, paldies.",
            "Lieliski, jauku dienu!",
        ),
    ),
}

# Conversations still waiting (not resolved): (name, language, channel, subject, tags,
# messages as (direction, minutes ago, text)). The customer wrote last, so the queue shows a
# due time; the one tagged vip falls under the vip policy. Gaps stay under the 24 h
# conversation window, or a message would open a conversation of its own.
_WAITING: tuple[
    tuple[str, str, str, str, tuple[str, ...], tuple[tuple[str, int, str], ...]], ...
] = (
    (
        "Saulė Mickevičiūtė",
        "lt",
        "whatsapp",
        "",
        (),
        (("inbound", 25, "Sveiki, ar dar galiu pridėti prekę prie užsakymo?"),),
    ),
    (
        "Vojtěch Hájek",
        "cs",
        "email",
        "Reklamace",
        (),
        (("inbound", 180, "Dobrý den, displej nové čtečky nefunguje. Jak ji mám reklamovat?"),),
    ),
    (
        "Dáša Hrušovská",
        "sk",
        "chat",
        "",
        ("vip",),
        (
            ("inbound", 50, "Máte tento model aj v čiernej farbe?"),
            ("outbound", 42, "Áno, čierny je skladom."),
            ("inbound", 10, "Výborne. Dá sa doručiť aj v sobotu?"),
        ),
    ),
    (
        "Ēriks Saulītis",
        "lv",
        "sms",
        "",
        (),
        (
            ("inbound", 1200, "Kurjers neatnāca, kā vienojāmies."),
            ("outbound", 1140, "Atvainojamies! Noskaidrosim un sazināsimies."),
            ("inbound", 90, "Vai ir kādas ziņas?"),
        ),
    ),
)

#: The channels of the history and how often each is used.
_CHANNELS = (("email", 35), ("chat", 25), ("whatsapp", 20), ("sms", 20))


class _Person:
    """An invented customer of the history, with an address on every channel."""

    def __init__(self, number: int, name: str, language: str) -> None:
        self.name = f"{name} (demo)"
        self.language = language
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        self.email = f"email:{ascii_name.lower().replace(' ', '.')}@example.com"
        self.phone = f"phone:+1555020{number:04d}"
        self.chat = f"chat:visitor-demo{number:04d}"

    def address(self, channel: str) -> str:
        return {"email": self.email, "chat": self.chat}.get(channel, self.phone)


class _Thread:
    """Builds the messages of one conversation, threading email replies."""

    def __init__(self, key: str, person: _Person, channel: str, subject: str) -> None:
        self.key = key
        self.person = person
        self.channel = channel
        self.subject = subject
        self.tags: tuple[str, ...] = ()
        self.items: list[InboundInteraction] = []

    def add(self, direction: str, at: datetime, text: str) -> None:
        n = len(self.items) + 1
        fields: dict[str, Any] = {"metadata": {"demo": True}}
        if direction == "inbound":
            fields["contact_name"] = self.person.name
            fields["metadata"] = {"demo": True, "language": self.person.language}
        if self.channel == "email":
            host = "mail.example.com" if direction == "inbound" else "hub.example.com"
            provider_id = f"<demo-{self.key}-{n}@{host}>"
            previous = self.items[-1].provider_message_id if self.items else None
            fields["subject"] = f"Re: {self.subject}" if previous else self.subject
            fields["thread_ref"] = previous  # without it a reply opens a new conversation
        else:
            provider_id = f"demo-{self.key}-{n}"
        self.items.append(
            InboundInteraction.model_validate(
                {
                    "channel": self.channel,
                    "direction": direction,
                    "address": self.person.address(self.channel),
                    "provider_message_id": provider_id,
                    "occurred_at": at.astimezone(UTC),
                    "text": text,
                    **fields,
                }
            )
        )


def _working_day(rng: random.Random, today: date) -> date:
    while True:
        day = today - timedelta(days=rng.randint(3, HISTORY_DAYS - 1))
        if day.weekday() < 5:
            return day


def _history(now: datetime, rng: random.Random) -> list[_Thread]:
    """One answered conversation per customer of :data:`_PEOPLE`: written mostly in office
    hours and answered within minutes; some answered late (after their SLA target), some
    written after hours and answered the next morning, some with a second exchange."""
    zone = ZoneInfo(TEAM_ZONE)
    today = now.astimezone(zone).date()
    channels = [c for c, _ in _CHANNELS]
    weights = [w for _, w in _CHANNELS]
    people = [(lang, name) for lang, names in _PEOPLE.items() for name in names]
    threads = []
    for number, (language, name) in enumerate(people, start=1):
        person = _Person(number, name, language)
        story = rng.choice(_STORIES[language])
        order = rng.randint(1100, 1999)
        channel = rng.choices(channels, weights)[0]
        thread = _Thread(f"h{number}", person, channel, story.subject.format(order=order))
        day = _working_day(rng, today)
        after_hours = day.weekday() < 4 and rng.random() < 0.12
        start = time(rng.randint(18, 21) if after_hours else rng.randint(9, 15), rng.randint(0, 59))
        asked = datetime.combine(day, start, zone)
        if after_hours:
            answered = datetime.combine(day + timedelta(days=1), time(9, rng.randint(5, 40)), zone)
        elif rng.random() < 0.15:  # late: past the 60-minute first response target
            answered = asked + timedelta(minutes=rng.randint(100, 300))
        else:
            answered = asked + timedelta(minutes=rng.randint(3, 50))
        thread.add("inbound", asked, story.ask.format(order=order))
        thread.add("outbound", answered, story.answer.format(order=order))
        if rng.random() < 0.4:
            again = answered + timedelta(minutes=rng.randint(15, 120))
            if rng.random() < 0.2:  # late, mostly past the 240-minute next response target
                # (within the day: after 24 h idle a reply would open a new conversation)
                last = again + timedelta(minutes=rng.randint(300, 600))
            else:
                last = again + timedelta(minutes=rng.randint(5, 90))
            thread.add("inbound", again, story.follow_up)
            thread.add("outbound", last, story.follow_answer)
        threads.append(thread)
    return threads


def _waiting(now: datetime, first_number: int) -> list[_Thread]:
    threads = []
    for number, (name, language, channel, subject, tags, messages) in enumerate(
        _WAITING, start=first_number
    ):
        thread = _Thread(f"w{number}", _Person(number, name, language), channel, subject)
        thread.tags = tags
        for direction, minutes_ago, text in messages:
            thread.add(direction, now - timedelta(minutes=minutes_ago), text)
        threads.append(thread)
    return threads


# -- Where the history's customers came from, earlier contacts, orders ------------------------

#: How far back the history's customers were first in touch (the retention cohorts).
EARLIER_DAYS = 180
#: Acquisition sources of the history's customers and how often each (None: nothing told).
_SOURCES: tuple[tuple[InboundSource | None, int], ...] = (
    (InboundSource(source="google", medium="cpc", campaign="winter-sale"), 35),
    (InboundSource(source="newsletter", medium="email", campaign="weekly"), 20),
    (InboundSource(source="facebook", medium="social"), 20),
    (None, 25),
)
#: Order amounts of the demo shop, EUR.
_PRICES = ("19.90", "24.90", "39.00", "59.90", "89.00", "129.00", "189.00")


def _earlier(history: list[_Thread], now: datetime, rng: random.Random) -> list[_Thread]:
    """Most customers of the history were in touch before it, one to six months ago, once
    or twice, on the channel they write on (so they are the same customers): the retention
    cohorts of the Reports page. Their first message carries where they came from."""
    zone = ZoneInfo(TEAM_ZONE)
    earlier = []
    for thread in history:
        person = thread.person
        contacts = []
        if rng.random() < 0.7:
            first = rng.randint(HISTORY_DAYS + 10, EARLIER_DAYS)
            contacts.append(first)
            if first > HISTORY_DAYS + 40 and rng.random() < 0.5:
                contacts.append(rng.randint(HISTORY_DAYS + 5, first - 25))
        for k, days_ago in enumerate(contacts):
            day = (now - timedelta(days=days_ago)).astimezone(zone).date()
            while day.weekday() >= 5:
                day -= timedelta(days=1)
            asked = datetime.combine(day, time(rng.randint(9, 15), rng.randint(0, 59)), zone)
            story = rng.choice(_STORIES[person.language])
            order = rng.randint(1100, 1999)
            subject = story.subject.format(order=order)
            earlier_thread = _Thread(f"{thread.key}e{k}", person, thread.channel, subject)
            earlier_thread.add("inbound", asked, story.ask.format(order=order))
            answered = asked + timedelta(minutes=rng.randint(4, 55))
            earlier_thread.add("outbound", answered, story.answer.format(order=order))
            earlier.append(earlier_thread)
    return earlier


def _with_sources(items: list[InboundInteraction], rng: random.Random) -> None:
    """The first message of each customer (by address) tells where it came from."""
    sources = [s for s, _ in _SOURCES]
    weights = [w for _, w in _SOURCES]
    seen: set[str] = set()
    for n in sorted(range(len(items)), key=lambda i: items[i].occurred_at):
        item = items[n]
        if item.direction != "inbound" or item.address in seen:
            continue
        seen.add(item.address)
        source = rng.choices(sources, weights)[0]
        if source is not None:
            items[n] = item.model_copy(update={"source": source})


def _orders(runtime: Runtime, threads: list[_Thread], now: datetime, rng: random.Random) -> int:
    """Orders in the shop of about half of the customers, placed after they were first in
    touch: EUR, one in USD (converted only with a HUB_REPORTS__RATES rate), one partly
    cancelled. Recorded as POST /v1/activities records them; how many."""
    first: dict[str, tuple[datetime, _Person]] = {}
    for thread in threads:
        at = thread.items[0].occurred_at
        address = thread.person.address(thread.channel)
        if address not in first or at < first[address][0]:
            first[address] = (at, thread.person)
    bodies: list[dict[str, Any]] = []
    for n, (address, (since, _)) in enumerate(sorted(first.items())):
        if rng.random() < 0.45:
            continue
        span = max(1, int((now - since).total_seconds() // 3600) - 24)
        for k in range(rng.choice((1, 1, 2, 3))):
            placed = since + timedelta(hours=rng.randint(1, span))
            amount = rng.choice(_PRICES)
            bodies.append(
                {
                    "type": "order.placed",
                    "source": "shop",
                    "source_id": f"demo-{n}-{k}",
                    "occurred_at": placed,
                    "address": address,
                    "amount": amount,
                    "currency": "EUR",
                    "reference": f"DEMO-{4000 + len(bodies)}",
                    "title": "Order (demo)",
                }
            )
    if bodies:
        bodies[-1] |= {"currency": "USD", "amount": "74.00"}
        cancelled = bodies[0]
        bodies.append(
            cancelled
            | {
                "type": "order.cancelled",
                "source_id": f"{cancelled['source_id']}-cancel",
                "occurred_at": cancelled["occurred_at"] + timedelta(hours=2),
                "amount": "19.90",
                "title": "One item cancelled (demo)",
            }
        )
    latest = datetime.now(UTC) + runtime.settings.max_clock_skew
    specs = [
        check_activity(b, default_region=runtime.settings.default_region, latest=latest)
        for b in bodies
    ]
    runtime.commands.activities.record_many(specs)
    return len(specs)


def _save_service_levels(runtime: Runtime) -> None:
    """Before any conversation opens: the service projection picks a conversation's policy
    when it applies the opening, with the definitions current then."""
    service_levels = runtime.commands.service_levels
    service_levels.save_calendar("default", CALENDAR, actor=ACTOR)
    for name, definition in POLICIES.items():
        service_levels.save_policy(name, definition, actor=ACTOR)


#: A history conversation as its surveys need it: customer, conversation, channel, agent and
#: its last message's time.
Surveyed = tuple[UUID, UUID, str, str, datetime]


def _record_history(
    runtime: Runtime, now: datetime
) -> tuple[list[_Thread], list[_Thread], list[Surveyed]]:
    """Record the history (with its customers' earlier contacts, first) and the waiting
    conversations in one call; assign and resolve the history's conversations (their
    resolution is dated now: the log has no earlier date); then the shop's orders."""
    rng = random.Random(HISTORY_SEED)  # noqa: S311 (a repeatable demo, not secrecy)
    history = _history(now, rng)
    waiting = _waiting(now, len(history) + 1)
    business = random.Random(HISTORY_SEED + 1)  # noqa: S311 (its own: the history stays as it was)
    earlier = _earlier(history, now, business)
    items = [i for t in (*earlier, *history, *waiting) for i in t.items]
    items.sort(key=lambda i: i.occurred_at)  # first contacts first
    _with_sources(items, business)
    results = runtime.record_now(items)
    recorded = {i.provider_message_id: r for i, r in zip(items, results, strict=True)}
    for thread in waiting:
        if thread.tags:
            customer = recorded[thread.items[0].provider_message_id].customer_id
            runtime.commands.set_tags(customer, list(thread.tags), AGENTS[1])
    surveyed: list[Surveyed] = []
    for n, thread in [*enumerate(history), *enumerate(earlier)]:
        first = recorded[thread.items[0].provider_message_id]
        agent = AGENTS[n % len(AGENTS)]
        runtime.commands.assign(first.conversation_id, agent, agent)
        runtime.commands.change_status(first.conversation_id, "resolved", agent)
        if thread in history:
            last = thread.items[-1].occurred_at
            surveyed.append((first.customer_id, first.conversation_id, thread.channel, agent, last))
    _orders(runtime, [*earlier, *history], now, business)
    return history, waiting, surveyed


def _interactions(now: datetime) -> list[InboundInteraction]:
    return [
        InboundInteraction.model_validate(
            {
                "channel": channel,
                "direction": direction,
                "address": address,
                "provider_message_id": provider_id,
                "occurred_at": now - timedelta(days=ago[0], hours=ago[1]),
                "text": text,
                "metadata": {"demo": True},
                **extra,
            }
        )
        for channel, direction, address, provider_id, ago, text, extra in _SCRIPT
    ]


def load_demo(runtime: Runtime) -> list[str]:
    """Record the demo dataset if the hub is empty; returns lines to show the user."""
    if runtime.store_position() > 0:
        return ["demo: the hub already holds data; demo dataset not loaded again"]
    now = datetime.now(UTC).replace(microsecond=0)
    _save_service_levels(runtime)
    history, waiting, surveyed = _record_history(runtime, now)
    rng = random.Random(HISTORY_SEED + 2)  # noqa: S311 (a repeatable demo, not secrecy)
    answers = record_survey_history(runtime, surveyed, rng)
    save_surveys(runtime)
    items = _interactions(now)
    results = runtime.record_now(items)
    by_id = {i.provider_message_id: r for i, r in zip(items, results, strict=True)}

    maria_sms = by_id["demo-sms-2"]
    runtime.commands.update_delivery(
        maria_sms.message_id, "delivered", now - timedelta(days=3, hours=4)
    )
    maria_wa = by_id["demo-wa-2"]
    runtime.commands.update_delivery(maria_wa.message_id, "delivered", now - timedelta(hours=25))
    runtime.commands.update_delivery(maria_wa.message_id, "read", now - timedelta(hours=24))
    runtime.commands.add_note(
        maria_wa.conversation_id,
        "Replacement order DEMO-R-77 created; courier pick-up Friday.",
        "agent.sam (demo)",
    )
    runtime.commands.assign(maria_wa.conversation_id, "agent.sam (demo)", "agent.sam (demo)")
    runtime.commands.change_status(maria_wa.conversation_id, "pending", "agent.sam (demo)")
    maria_email = by_id["<demo-maria-1@mail.example.net>"]
    runtime.commands.identity.merge(
        maria_wa.customer_id,
        maria_email.customer_id,
        actor="agent.sam (demo)",
        reason="same person: she quotes her order #1042",
    )
    runtime.commands.identity.link_address(CHEN, CHEN_EMAIL, verified=False, reason="chat_visitor")
    runtime.commands.set_tags(maria_wa.customer_id, ["vip", "replacement-sent"], "agent.sam (demo)")
    runtime.commands.set_tags(
        by_id["demo-form-881"].customer_id, ["sales-lead"], "agent.lee (demo)"
    )
    james = by_id["<demo-3@mail.example.com>"]
    runtime.commands.change_status(james.conversation_id, "resolved", "agent.lee (demo)")
    customers = len({r.customer_id for r in results}) - 1  # Maria's two are one
    return [
        f"demo: loaded {len(items)} interactions for {customers} customers. {DEMO_NOTE}",
        "demo: Maria's timeline (SMS, WhatsApp, email): "
        f"/v1/customers/{maria_wa.customer_id}/timeline",
        "demo: try the web chat at /chat/",
        f"demo: and {len(history)} answered conversations of the last {HISTORY_DAYS // 7} weeks "
        f"in Lithuanian, Czech, Slovak and Latvian, {len(waiting)} more waiting for an answer; "
        f"SLA policies {' and '.join(POLICIES)} count in the 'default' calendar ({TEAM_ZONE})",
        "demo: response times and SLA breaches per week on the Reports page: /reports",
        f"demo: {answers} CSAT and NPS answers from the history's customers; CSAT is on "
        "(/surveys): resolve a conversation and a minute later its customer is asked, in "
        "their language; answer as them in the sandbox",
        f"demo: the history's customers came from google, a newsletter or facebook, most of "
        f"them first in touch up to {EARLIER_DAYS // 30} months ago, and about half ordered "
        "(retention cohorts and value per source on the Reports page; one order is in USD: "
        'set HUB_REPORTS__RATES=\'{"USD": "0.92"}\' to count it)',
    ]


def introduce_sandbox(runtime: Runtime) -> list[str]:
    """Give the sandbox (on with ``--demo``) the demo's people as its simulated customers;
    returns lines to show the user. The sandbox's world lives in memory, so every start."""
    connector = sandbox_of(runtime)
    if connector is None:
        return []
    for name, address in SANDBOX_CONTACTS:
        connector.world.contact(address, name)
    return [
        "demo: the sandbox is on: replies by SMS, WhatsApp, email and Telegram stay on this "
        "machine; write back as the customer at /sandbox/"
    ]
