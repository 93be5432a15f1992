"""erase: from ``POST /v1/customers/{id}/erase`` until no file of the data directory holds the
customer's plaintext any more (issue 15: "within seconds", for a customer with 10,000 messages).

The dataset, recorded in-process through the runtime and projected (untimed): one customer
with ``erase_messages`` messages over a year on email and web chat (signed in with the email),
every one carrying a distinctive marker in its text, the customer's name and address carrying
it too, email subjects and every twentieth message's attachment name as well; interleaved with
as many messages from a thousand other customers, so the customer's rows are spread over the
files as they would be in a real hub. ``hub serve`` serves it.

Figures: the erase request's latency (until the answer), and the time from sending it until a
scan of every file of the data directory (``events.db``, ``views.db``, their ``-wal`` and
``-shm`` files, the key files: the proof of tests/api/test_erasure.py) finds the marker in none
of them for good. The files are scanned again and again (read in chunks by this process, not
through SQLite) from the moment the request is sent until a scan that started after the answer
is clean; the time is the end of the first clean scan that no dirty one followed, an upper
bound off by at most one scan (its duration is reported). The plaintext may be gone before the
answer comes: the answer also waits for the rest of the erasure (dead letters, connectors,
write-ahead logs). Afterwards, with the projections caught up, the files are scanned once more:
a marker coming back fails the benchmark.

Baseline, same run, same server, before the erasure: reading the customer's whole timeline
through the API, newest first in pages of 200 (``GET /v1/customers/{id}/timeline?before=...``),
the median of three reads after a warm-up one. That is the cheapest way to touch every message
of the customer once through the running hub; an erasure must find and remove every one of
those rows (and the directory's, the search index's, the conversations'), zero their pages and
truncate the write-ahead logs, so its ratio says how many whole-timeline reads one erasure
costs. (Recording the messages is not the baseline: it runs in batches in-process, a different
path, and is reported in the raw results only.) Ratio: time to no plaintext / timeline read.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from bench import Result, Row, Scale
from bench.client import HttpError
from bench.harness import auth_headers, hub_server
from bench.workload import Workload, to_inbound

NAME = "erase"
#: Issue 15: every plaintext copy removed "within seconds, not at the next rebuild"; the proof
#: test waits at most 5 s.
TARGET_SECONDS = 5.0
MARKER = "qvx7731erz"  # lowercase: addresses are normalised to lowercase
ADDRESS = f"email:zorya.{MARKER}@example.org"
CONTACT_NAME = f"Zorya {MARKER.capitalize()}"
OTHER_CUSTOMERS = 1_000
PAGE = 200
BASELINE_READS = 3
SCAN_PAUSE = 0.005  # seconds between two scans (the server shares the machine)
SCAN_TIMEOUT = 60.0
BATCH = 1_000


def _erased_customer_messages(count: int, now: datetime) -> list[dict[str, Any]]:
    """The customer's messages (interaction bodies), oldest first, over a year."""
    rng = random.Random(15)
    step = timedelta(days=365) / count
    bodies: list[dict[str, Any]] = []
    for n in range(count):
        channel = "email" if n % 3 else "chat"
        body: dict[str, Any] = {
            "channel": channel,
            "direction": "inbound" if n % 4 else "outbound",
            "address": ADDRESS,
            "provider_message_id": f"bench-erase-{n}",
            "occurred_at": (now - (count - n) * step).isoformat(),
            "text": f"Message {n} from {MARKER}: order {1000 + n // 40} "
            + " ".join(
                rng.choice(("where", "is", "my", "parcel", "refund", "please", "today"))
                for _ in range(rng.randint(5, 40))
            ),
            "contact_name": CONTACT_NAME if n % 10 == 0 else None,
            "metadata": {"source": "bench"},
        }
        if channel == "email":
            body["subject"] = f"Order {1000 + n // 40} ({MARKER})"
        if n % 20 == 0:
            body["attachments"] = [
                {"name": f"receipt-{MARKER}-{n}.jpg", "content_type": "image/jpeg", "size": 4096}
            ]
        bodies.append({k: v for k, v in body.items() if v is not None})
    return bodies


def build(data_dir: Path, messages: int) -> dict[str, Any]:
    """Record the dataset; returns the erased customer's id, one other customer's id and how
    long recording and projecting took."""
    from hub.config import Settings
    from hub.embedded.follower import LogFollower
    from hub.runtime import Runtime

    now = datetime.now(UTC)
    mine = _erased_customer_messages(messages, now)
    workload = Workload(
        seed=1515, clock="virtual", span=timedelta(days=365), step=timedelta(days=365) / messages
    )
    customers = min(OTHER_CUSTOMERS, messages)
    rest = [True] * (customers - 1) + [False] * (messages - customers)
    random.Random(1515).shuffle(rest)
    others = [workload.interaction(first_contact=first) for first in [True, *rest]]
    # Interleaved by time, as they would have arrived.
    bodies = sorted(mine + others, key=lambda b: str(b["occurred_at"]))
    runtime = Runtime(Settings(data_dir=data_dir))
    runtime.start()
    try:
        erased: UUID | None = None
        other: UUID | None = None
        started = time.perf_counter()
        for start in range(0, len(bodies), BATCH):
            chunk = bodies[start : start + BATCH]
            results = runtime.record_now([to_inbound(b) for b in chunk])
            for body, result in zip(chunk, results, strict=True):
                if body["address"] == ADDRESS:
                    erased = result.customer_id
                else:
                    other = result.customer_id
        recorded = time.perf_counter() - started
        started = time.perf_counter()
        LogFollower(runtime.store, runtime.views, batch_size=5000).catch_up()
        projected = time.perf_counter() - started
    finally:
        runtime.stop()
    assert erased is not None
    assert other is not None
    return {
        "erased": erased,
        "other": other,
        "messages": len(mine),
        "other_messages": len(others),
        "other_customers": customers,
        "record_seconds": recorded,
        "project_seconds": projected,
    }


def contains(path: Path, needle: bytes, chunk: int = 1 << 22) -> bool:
    """Whether the file's bytes contain ``needle``: read in chunks into one buffer (twice as
    fast as ``read_bytes``, and unlike ``mmap`` safe when SQLite truncates the file meanwhile)."""
    overlap = len(needle) - 1
    buffer = bytearray(chunk + overlap)
    view = memoryview(buffer)
    kept = 0
    with open(path, "rb", buffering=0) as handle:
        while got := handle.readinto(view[kept : kept + chunk]):
            end = kept + got
            if buffer.find(needle, 0, end) >= 0:
                return True
            kept = min(overlap, end)
            buffer[:kept] = bytes(view[end - kept : end])
    return False


def files_with_marker(data_dir: Path) -> list[str]:
    """The files of ``data_dir`` (recursively) whose bytes contain the marker."""
    needle = MARKER.encode()
    found: list[str] = []
    for path in sorted(data_dir.rglob("*")):
        try:
            if path.is_file() and contains(path, needle):
                found.append(path.name)
        except FileNotFoundError:  # a file removed between listing and reading
            continue
    return found


def read_timeline(client: httpx.Client, customer: UUID) -> tuple[float, int]:
    """The customer's whole timeline, page after page; (seconds, messages on it)."""
    items = 0
    cursor: str | None = None
    started = time.perf_counter()
    while True:
        params: dict[str, str | int] = {"limit": PAGE}
        if cursor is not None:
            params["before"] = cursor
        response = client.get(f"/v1/customers/{customer}/timeline", params=params)
        if response.status_code != 200:
            raise HttpError(f"timeline: {response.status_code} {response.text[:200]}")
        page = response.json()
        items += sum(1 for item in page["items"] if item["kind"] == "message")
        cursor = page["next_cursor"]
        if not cursor:
            return time.perf_counter() - started, items


def wait_caught_up(client: httpx.Client, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200 and response.json()["lag"] == 0:
            return
        time.sleep(0.05)
    raise TimeoutError(f"projections not caught up after {timeout}s")


def erase_and_scan(client: httpx.Client, data_dir: Path, customer: UUID) -> dict[str, Any]:
    """Send the erase request from a thread and scan the files from that moment until the
    answer has come and a scan started after it is clean; the time of no plaintext is the end
    of the first clean scan that no dirty one followed."""
    sent = threading.Event()
    answer: dict[str, Any] = {}

    def request() -> None:
        answer["sent"] = time.perf_counter()
        sent.set()
        try:
            response = client.post(
                f"/v1/customers/{customer}/erase", json={"reason": "data_subject_request"}
            )
            answer["status"] = response.status_code
            answer["body"] = response.json() if response.status_code == 200 else response.text
        except Exception as exc:  # reported by the scanning thread
            answer["error"] = exc
        answer["answered"] = time.perf_counter()

    thread = threading.Thread(target=request, name="erase-request")
    thread.start()
    sent.wait()
    scans: list[float] = []
    clean_at: float | None = None
    reappeared = 0  # clean scans followed by a dirty one
    dirty: list[str] = []
    deadline = answer["sent"] + SCAN_TIMEOUT
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        dirty = files_with_marker(data_dir)
        finished = time.perf_counter()
        scans.append(finished - started)
        if dirty:
            reappeared += clean_at is not None
            clean_at = None
        elif clean_at is None:
            clean_at = finished
        answered = answer.get("answered")
        if answered is not None and answer.get("status") != 200:
            break
        if answered is not None and started > answered and not dirty:
            break
        time.sleep(SCAN_PAUSE)
    thread.join(timeout=SCAN_TIMEOUT)
    if "error" in answer:
        raise HttpError(f"erase request failed: {answer['error']!r}")
    if answer.get("status") != 200:
        raise HttpError(f"erase: {answer.get('status')} {answer.get('body')!r}")
    if clean_at is None:
        raise TimeoutError(f"the marker is still in {dirty} {SCAN_TIMEOUT:.0f} s after erasing")
    body = answer["body"]
    return {
        "request_seconds": answer["answered"] - answer["sent"],
        "no_plaintext_seconds": clean_at - answer["sent"],
        "clean_before_answer": clean_at <= answer["answered"],
        "scans": len(scans),
        "reappeared": reappeared,
        "scan_ms_median": statistics.median(scans) * 1000,
        "customer_ids": len(body["customer_ids"]),
        "files_compacted": body["files_compacted"],
        "removed": body["removed"],
    }


def measure(
    base_url: str, data_dir: Path, erased: UUID, other: UUID, messages: int
) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, headers=auth_headers(), timeout=120.0) as client:
        wait_caught_up(client)
        before = files_with_marker(data_dir)
        if not before:
            raise RuntimeError("the marker is in no file before the erasure: nothing to measure")
        _, items = read_timeline(client, erased)  # warm-up, and the count
        if items != messages:
            raise RuntimeError(f"the timeline has {items} messages, {messages} were recorded")
        reads = [read_timeline(client, erased)[0] for _ in range(BASELINE_READS)]
        erasure = erase_and_scan(client, data_dir, erased)
        # Nothing comes back once every follower has applied customer.erased.v1.
        wait_caught_up(client)
        after = files_with_marker(data_dir)
        if after:
            raise RuntimeError(f"the marker came back in {after} after the erasure")
        gone = client.get(f"/v1/customers/{erased}/timeline")
        if gone.status_code != 410:
            raise HttpError(f"erased timeline answered {gone.status_code}, not 410")
        kept = client.get(f"/v1/customers/{other}/timeline")
        if kept.status_code != 200 or not kept.json()["items"]:
            raise HttpError(f"another customer's timeline: {kept.status_code}")
    return erasure | {
        "baseline_seconds": statistics.median(reads),
        "baseline_reads": reads,
        "files_before": before,
    }


def run(scale: Scale, workdir: Path) -> Result:
    data_dir = workdir / "data"
    dataset = build(data_dir, scale.erase_messages)
    with hub_server(data_dir) as server:
        result = measure(
            server.base_url, data_dir, dataset["erased"], dataset["other"], dataset["messages"]
        )
        result["server_rss_mib"] = server.rss_kib() / 1024
    result["dataset"] = {k: v for k, v in dataset.items() if k not in ("erased", "other")}
    messages = dataset["messages"]
    baseline_ms = result["baseline_seconds"] * 1000
    pages = -(-messages // PAGE)
    baseline = (
        f"the customer's whole timeline read through the API before the erasure "
        f"({pages} pages of {PAGE}): {baseline_ms:,.0f} ms"
    )
    rows = [
        Row(
            benchmark=NAME,
            figure=f"{result['no_plaintext_seconds'] * 1000:,.0f} ms from the request until "
            f"no file of the data directory holds the customer's plaintext ({messages:,} "
            f"messages, among {dataset['other_messages']:,} of {dataset['other_customers']:,} "
            f"others; one scan of the files: {result['scan_ms_median']:.0f} ms)",
            target=f"<= {TARGET_SECONDS:.0f} s",
            baseline=baseline,
            ratio=result["no_plaintext_seconds"] / result["baseline_seconds"],
            ratio_label="no plaintext / timeline read",
            met=result["no_plaintext_seconds"] <= TARGET_SECONDS,
            value=result["no_plaintext_seconds"] * 1000,
            unit="ms",
        ),
        Row(
            benchmark=NAME,
            figure=f"erase request answered in {result['request_seconds'] * 1000:,.0f} ms "
            f"(files compacted: {result['files_compacted']})",
            target="-",
            baseline="the same timeline read",
            ratio=result["request_seconds"] / result["baseline_seconds"],
            ratio_label="request / timeline read",
            met=None,
            value=result["request_seconds"] * 1000,
            unit="ms",
        ),
    ]
    return Result(NAME, rows, result)
