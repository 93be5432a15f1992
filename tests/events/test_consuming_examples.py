"""The webhook receivers of docs/consuming.md (docs/examples/) accept what the Standard Webhooks
reference library signs and nothing else, and handle an event once: the Python one and the
Node.js one, each run as its guide says."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from hub.events import encode_event
from tests.events.test_published import all_event_samples

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def node() -> str:
    found = shutil.which("node")
    if found is None:  # not skipped: the guide's JavaScript would go untested
        pytest.fail("Node.js (`node`) is not installed: apt-get install nodejs (20 or later)")
    return found


@dataclass
class Receiver:
    process: subprocess.Popen[str]
    url: str

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        headers = {"content-type": "application/json", **headers}
        return httpx.post(self.url, content=body, headers=headers, timeout=5).status_code

    def handled(self) -> list[str]:
        """The lines the receiver printed, one per event handled (once it stopped)."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=5)
        return out.splitlines()


def _start(command: list[str]) -> Receiver:
    process = subprocess.Popen(
        command,
        cwd=EXAMPLES,
        env=os.environ | {"WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # {"listening": port}
    assert first, f"{command} did not start (exit code {process.poll()})"
    return Receiver(process, f"http://127.0.0.1:{json.loads(first)['listening']}/hub-events")


@pytest.fixture(params=["python", "node"])
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    if request.param == "python":
        command = [sys.executable, "verify_webhook.py", "0"]
    else:
        command = [node(), "verify-webhook.mjs", "0"]
    started = _start(command)
    try:
        yield started
    finally:
        started.process.kill()
        started.process.wait()


def signed(body: bytes, msg_id: str, secret: str = SECRET, **shift: float) -> dict[str, str]:
    """The Standard Webhooks headers of ``body``, signed by the reference library."""
    at = datetime.now(UTC) + timedelta(**shift)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def test_a_signed_event_is_handled_once_and_anything_else_refused(receiver: Receiver) -> None:
    first, second = all_event_samples()[:2]
    body, other = encode_event(first), encode_event(second)
    headers = signed(body, str(first.id))
    assert receiver.post(body, headers) == 204
    assert receiver.post(body, headers) == 204  # a retry: answered, not handled again
    tampered = body.replace(b'"Alice Example"', b'"Mallory Example"')
    assert tampered != body
    assert receiver.post(tampered, headers) == 401
    assert receiver.post(other, headers) == 401  # another body under this signature
    other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    assert receiver.post(body, signed(body, str(first.id), other_secret)) == 401
    assert receiver.post(body, signed(body, str(first.id), minutes=-10)) == 401  # replayed
    assert receiver.post(body, {}) == 401
    # During a secret's rotation the hub sends both signatures: the old one still verifies.
    rotated = signed(other, str(second.id), other_secret)
    old = signed(other, str(second.id))
    rotated["webhook-signature"] += " " + old["webhook-signature"]
    rotated["webhook-timestamp"] = old["webhook-timestamp"]
    assert receiver.post(other, rotated) == 204
    assert receiver.handled() == [f"{first.type} {first.id}", f"{second.type} {second.id}"]


def test_the_guide_shows_the_examples_own_code() -> None:
    guide = (DOCS / "consuming.md").read_text()
    files = {"python": "verify_webhook.py", "js": "verify-webhook.mjs"}
    shown = [
        (language, code)
        for language, code in re.findall(r"```(python|js)\n(.*?)```", guide, re.DOTALL)
        if "verify(" in code
    ]
    assert sorted(language for language, _ in shown) == ["js", "python"]
    for language, code in shown:
        assert code in (EXAMPLES / files[language]).read_text(), f"{files[language]} changed"
