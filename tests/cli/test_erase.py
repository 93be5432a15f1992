"""``hub customers erase``: the CLI erases on a hub's data directory, while that hub runs; the
running hub learns of it from the log."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from hub.cli import app as cli_app
from tests.support.api import ADMIN_TOKEN, assert_error, running_app, wait_for


def _erase(data_dir: Any, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["customers", "erase", *args, "--data-dir", str(data_dir)])


def test_the_cli_erases_beside_a_running_hub(make_settings: Any) -> None:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN)
    with running_app(settings) as api:
        customer = api.record(address="phone:+37060071501", contact_name="Cli Vardenis")
        api.wait_caught_up()

        done = _erase(settings.data_dir, customer["customer_id"], "--reason", "test_data")

        assert done.exit_code == 0, done.output
        assert customer["customer_id"] in done.stdout
        wait_for(lambda: api.get(f"/v1/customers/{customer['customer_id']}").status_code == 410)
        assert_error(api.get(f"/v1/customers/{customer['customer_id']}"), 410, "customer_erased")
        assert "Cli Vardenis" not in api.get("/v1/events").text


def test_the_cli_refuses_an_unknown_customer_or_reason(make_settings: Any) -> None:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN)
    with running_app(settings) as api:
        customer = api.record(address="phone:+37060071502")
    unknown = _erase(
        settings.data_dir, "0190d7a2-0000-7000-8000-000000000000", "--reason", "objection"
    )
    assert unknown.exit_code == 1
    wrong = _erase(settings.data_dir, customer["customer_id"], "--reason", "whim")
    assert wrong.exit_code == 1
    assert "reason must be one of" in wrong.output
