"""Replies a second from an agent's POST to the provider, against the connector's ``send()``
alone, for the code on ``PYTHONPATH`` (the channels row's own functions, without its other
parts): ``python -m bench.dispatch_rate [REPLIES] [CHANNELS]``, e.g. ``500 sms,email``.

Run it in turns against two worktrees to compare commits (docs/performance.md, issue 20).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.channels import _conversations, connector_env, connector_rate, dispatch_rate, peers
from bench.harness import hub_server


def main(replies: int, channels: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with peers(workdir) as (peer, smtp_port):
            env = connector_env(peer, smtp_port)
            with hub_server(workdir / "hub", **env) as hub:
                for channel in channels:
                    conversations = asyncio.run(_conversations(hub.port, channel, replies))
                    out[channel] = asyncio.run(dispatch_rate(hub, peer, channel, conversations))
            for channel in channels:
                out[channel]["alone"] = asyncio.run(connector_rate(channel, env, replies))["rate"]
    return out


if __name__ == "__main__":
    replies = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    channels = sys.argv[2].split(",") if len(sys.argv) > 2 else ["sms", "email"]
    for channel, r in main(replies, channels).items():
        print(
            f"{channel}: {r['rate']:.0f} replies/s, alone {r['alone']:.0f}/s, "
            f"ratio {r['rate'] / r['alone']:.3f}, CPU {r['hub_cpu_ms_per_reply']:.2f} ms a reply"
        )
