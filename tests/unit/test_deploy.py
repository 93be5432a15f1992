"""deploy/ files are checked by parsing them (there is no container engine here)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _instructions(path: Path) -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            lines.append((keyword.upper(), rest))
            current = ""
    return lines


def test_dockerfile_runs_the_embedded_hub_as_an_unprivileged_user() -> None:
    steps = _instructions(ROOT / "deploy" / "Dockerfile")
    keywords = [k for k, _ in steps]
    known = {
        "FROM",
        "ENV",
        "WORKDIR",
        "COPY",
        "RUN",
        "USER",
        "VOLUME",
        "EXPOSE",
        "HEALTHCHECK",
        "STOPSIGNAL",
        "CMD",
    }
    assert set(keywords) <= known
    assert keywords[0] == "FROM"
    assert steps[0][1].startswith("python:3.1")
    for keyword, rest in steps:
        if keyword == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), f"COPY source {source} missing"
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd == ["hub", "serve"]
    assert dict(steps)["USER"] == "hub"
    assert "8000" in dict(steps)["EXPOSE"]
    env = dict(steps)["ENV"]
    assert "HUB_DATA_DIR=/data" in env
    assert "HUB_HOST=0.0.0.0" in env
    assert "/readyz" in dict(steps)["HEALTHCHECK"]
