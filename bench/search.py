"""search: GET /v1/search?q= over 100,000 messages (1,000,000 at ``--scale full``).

The dataset is recorded in-process through the runtime in batches of 1,000 and projected
(untimed), like timeline_read's, but the messages are multilingual: Lithuanian, Czech, Slovak,
Latvian and English words, most with diacritics. One message in 200 also carries a rare word
(one of 100, each in about 0.005% of the messages: a page or less of hits). Then ``hub serve``
answers searches typed WITHOUT diacritics, sequentially on one keep-alive connection:

- rare: a rare word ("zasinelyte" for "Žąsinėlytė"): the index finds a few documents;
- common: a word of everyday text ("prasau", "dekuji", "paldies", "order"): a tenth to a fifth
  of all messages match, so the newest 50 are picked from tens of thousands.

Baseline, same run, same connection: GET /healthz, interleaved request by request. Ratio: p99
of the search over p99 of /healthz.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import orjson

from bench import Result, Row, Scale, percentile
from bench.client import Connection, HttpError, encode_request, install_uvloop
from bench.harness import auth_headers, hub_server
from bench.workload import Dataset, Workload, to_inbound
from hub.config import Settings
from hub.projections.search_text import fold

NAME = "search"
WARMUP = 100
#: Words of everyday messages, per language (what agents search most).
VOCABULARY = {
    "lt": "sveiki labas prašau ačiū užsakymas siuntinys grąžinti pinigus kada atvyks sąskaita "
    "mokėjimas pristatymas kurjeris dėžė sugadinta laiškas adresas keisti šiandien rytoj "
    "savaitė kodas nuolaida prekė dydis spalva grąžinimas",
    "cs": "dobrý den prosím děkuji objednávka zásilka vrátit peníze kdy dorazí faktura platba "
    "doručení kurýr krabice poškozená adresa změnit dnes zítra týden kód sleva zboží velikost "
    "barva vrácení",
    "sk": "dobrý deň prosím ďakujem objednávka zásielka vrátiť peniaze kedy príde faktúra platba "
    "doručenie kuriér škatuľa poškodená adresa zmeniť dnes zajtra týždeň kód zľava tovar "
    "veľkosť farba vrátenie",
    "lv": "labdien lūdzu paldies pasūtījums sūtījums atgriezt naudu kad pienāks rēķins maksājums "
    "piegāde kurjers kaste bojāta adrese mainīt šodien rīt nedēļa kods atlaide prece izmērs "
    "krāsa atgriešana",
    "en": "hello please thanks order parcel refund money when arrive invoice payment delivery "
    "courier box damaged address change today tomorrow week code discount item size colour return",
}
LANGUAGES = (("lt", 0.3), ("cs", 0.2), ("sk", 0.15), ("lv", 0.15), ("en", 0.2))
COMMON_QUERIES = ("prasau", "dekuji", "dakujem", "paldies", "order", "pasutijums")
_SYLLABLES = ("žą", "si", "nė", "ly", "tė", "ků", "ňá", "ļū", "ģē", "ďá", "rų", "šė", "čí", "ķī")
RARE_WORDS = 100
RARE_SHARE = 1 / 200


class MultilingualWorkload(Workload):
    """The benchmark workload, with texts in five languages and now and then a rare word."""

    rare: tuple[str, ...] = ()

    def _text(self, low: int = 40, high: int = 400) -> str:
        rng = self.rng
        language = rng.choices([name for name, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
        vocabulary = VOCABULARY[language].split()
        chosen = [rng.choice(vocabulary) for _ in range(rng.randint(6, 40))]
        if rng.random() < RARE_SHARE:
            chosen.insert(rng.randrange(len(chosen)), rng.choice(self.rare))
        return " ".join(chosen).capitalize() + "."


def rare_words(seed: int) -> tuple[str, ...]:
    """Words no message has but the ones they are planted in: four syllables with diacritics."""
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < RARE_WORDS:
        found.add("".join(rng.choice(_SYLLABLES) for _ in range(4)).capitalize())
    return tuple(sorted(found))


def build(data_dir: Path, customers: int, messages: int, seed: int = 11) -> Dataset:
    """Record and project the dataset (as ``bench.workload.build_dataset``, multilingual)."""
    from hub.embedded.follower import LogFollower
    from hub.runtime import Runtime

    workload = MultilingualWorkload(seed=seed, clock="virtual", step=timedelta(days=30) / messages)
    workload.rare = rare_words(seed)
    rng = random.Random(seed)
    rest = [True] * (customers - 1) + [False] * (messages - customers)
    rng.shuffle(rest)
    firsts = [True, *rest]
    runtime = Runtime(Settings(data_dir=data_dir))
    runtime.start()
    try:
        customer_ids: set[UUID] = set()
        started = time.perf_counter()
        for start in range(0, messages, 1000):
            chunk = [
                to_inbound(workload.interaction(first_contact=first))
                for first in firsts[start : start + 1000]
            ]
            customer_ids.update(r.customer_id for r in runtime.record_now(chunk))
        recorded = time.perf_counter() - started
        started = time.perf_counter()
        LogFollower(runtime.store, runtime.views, batch_size=5000).catch_up()
        projected = time.perf_counter() - started
        stored = runtime.store_position()
    finally:
        runtime.stop()
    return Dataset(data_dir, sorted(customer_ids), messages, stored, recorded, projected)


async def measure(port: int, requests: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    headers = auth_headers()
    rare = [fold(w) for w in rare_words(11)]
    conn = await Connection(port).open()
    health = encode_request("GET", "/healthz", port, None, headers)
    took: dict[str, list[float]] = {"rare": [], "common": [], "healthz": []}
    hits: dict[str, int] = {"rare": 0, "common": 0}
    try:
        for index in range(WARMUP + requests):
            kind = "rare" if index % 2 else "common"
            word = rng.choice(rare if kind == "rare" else COMMON_QUERIES)
            raw = encode_request("GET", f"/v1/search?q={quote(word)}", port, None, headers)
            started = time.perf_counter()
            status, body = await conn.send_raw(raw)
            search_took = time.perf_counter() - started
            if status != 200:
                raise HttpError(f"search {word}: {status} {body[:200]!r}")
            started = time.perf_counter()
            health_status, _ = await conn.send_raw(health)
            health_took = time.perf_counter() - started
            if health_status != 200:
                raise HttpError(f"healthz: {health_status}")
            if index >= WARMUP:
                took[kind].append(search_took)
                took["healthz"].append(health_took)
                hits[kind] += len(orjson.loads(body)["items"])
    finally:
        await conn.close()

    def summary(values: list[float]) -> dict[str, float]:
        return {f"p{q}_ms": percentile(values, q) * 1000 for q in (50, 95, 99)} | {
            "max_ms": max(values) * 1000,
            "requests": len(values),
        }

    result = {kind: summary(values) for kind, values in took.items()}
    for kind in ("rare", "common"):
        result[kind]["hits_per_page"] = hits[kind] / len(took[kind])
    return result


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    dataset = build(
        workdir / "data", customers=scale.timeline_customers, messages=scale.timeline_messages
    )
    with hub_server(dataset.data_dir) as server:
        result = asyncio.run(measure(server.port, scale.timeline_requests, 43))
        result["server_rss_mib"] = server.rss_kib() / 1024
    hz = result["healthz"]
    rows = []
    for kind, what in (("rare", "a rare word"), ("common", "a common word")):
        s = result[kind]
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{what}: p50 {s['p50_ms']:.1f} / p95 {s['p95_ms']:.1f} / p99 "
                f"{s['p99_ms']:.1f} ms ({s['requests']:,} sequential searches typed without "
                f"diacritics, {dataset.interactions:,} messages in 5 languages, "
                f"{s['hits_per_page']:.0f} hits/page)",
                target="none set (the figure is asked for)",
                baseline=f"GET /healthz: p50 {hz['p50_ms']:.2f} / p99 {hz['p99_ms']:.2f} ms",
                ratio=s["p99_ms"] / hz["p99_ms"],
                ratio_label="p99 / p99",
                met=None,
                value=s["p99_ms"],
                unit="ms",
            )
        )
    result["dataset"] = {
        "customers": len(dataset.customer_ids),
        "interactions": dataset.interactions,
        "stored_events": dataset.stored_events,
        "record_seconds": dataset.record_seconds,
        "project_seconds": dataset.project_seconds,
    }
    return Result(NAME, rows, result)
