"""``hub customers export``: the export document from a hub's data directory, beside the running
hub, to standard output or to an owner-only file; recorded in the access log; refused for an
unknown or erased customer. ``hub customers export-schema`` prints docs/export.schema.json."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import jsonschema_rs
from typer.testing import CliRunner

from hub.cli import app as cli_app
from hub.events.export import document_schema
from tests.support.api import ADMIN_TOKEN, running_app


def _export(data_dir: Any, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["customers", "export", *args, "--data-dir", str(data_dir)])


def _valid(document: dict[str, Any]) -> dict[str, Any]:
    jsonschema_rs.validator_for(document_schema()).validate(document)
    return document


def test_the_cli_exports_beside_a_running_hub(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN)
    with running_app(settings) as api:
        sms = api.record(address="phone:+37060072501", text="Labas", contact_name="Jonas")
        api.post(f"/v1/conversations/{sms['conversation_id']}/notes", json={"text": "call him"})
        api.wait_caught_up()
        customer = sms["customer_id"]

        printed = _export(settings.data_dir, customer)

        assert printed.exit_code == 0, printed.output
        document = _valid(json.loads(printed.stdout))
        assert document["customer_ids"] == [customer]
        assert document["profile"]["display_name"] == "Jonas"
        (conversation,) = document["conversations"]
        assert [(i["kind"], i["text"]) for i in conversation["items"]] == [
            ("message", "Labas"),
            ("note", "call him"),
        ]

        target = tmp_path / "out" / "jonas.json"
        target.parent.mkdir()
        target.write_text("stale")
        target.chmod(0o644)
        written = _export(settings.data_dir, customer, "-o", str(target))

        assert written.exit_code == 0, written.output
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert "1 conversation(s), 1 message(s), 1 note(s)" in written.stderr
        from_file = _valid(json.loads(target.read_bytes()))
        assert from_file["conversations"] == document["conversations"]
        # The first export (by the command line, as the OS user) is in the second one, and
        # the running hub's access log shows both.
        (first,) = [e for e in from_file["access_log"] if e["action"] == "cli:export"]
        assert first["principal_name"].startswith("command line (")
        assert first["items"] == 2
        log = api.get(f"/v1/customers/{customer}/access-log").json()["items"]
        assert [e["action"] for e in log].count("cli:export") == 2


def test_the_cli_refuses_an_unknown_or_erased_customer(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN)
    with running_app(settings) as api:
        customer = api.record(address="phone:+37060072502")["customer_id"]
        erased = api.post(f"/v1/customers/{customer}/erase", json={"reason": "test_data"})
        assert erased.status_code == 200, erased.text

    unknown = _export(settings.data_dir, "0190d7a2-0000-7000-8000-000000000000")
    assert unknown.exit_code == 1
    assert "no customer" in unknown.stderr
    target = tmp_path / "erased.json"
    gone = _export(settings.data_dir, customer, "-o", str(target))
    assert gone.exit_code == 1
    assert "erased" in gone.stderr
    assert not target.exists()


def test_the_schema_command_prints_the_checked_in_schema() -> None:
    printed = CliRunner().invoke(cli_app, ["customers", "export-schema"])
    assert printed.exit_code == 0, printed.output
    checked_in = Path(__file__).resolve().parents[2] / "docs" / "export.schema.json"
    assert json.loads(printed.stdout) == json.loads(checked_in.read_text()) == document_schema()
