"""kafka_soak: bench.soak's load and measures against ``hub run all`` (every role of the
distributed runtime in one process) on the test broker and a fresh PostgreSQL database.

``python -m bench --only kafka_soak`` (``Scale.soak_seconds``: 10 min at the default scale,
1 min at ``quick``). The broker, the database and the process are started as for the other
kafka_* rows (bench.kafka_broker, bench.kafka_cluster). The same 200 interactions/s: 180 new ones
a second to the process's ingest routes, 10 agents replying in web chat conversations 20 times a
second after reading the customer's timeline, each with the console's queue feed open. What
differs from ``hub serve``:

- ingest answers once the broker has the interaction (``accepted``), before it is recorded: a
  sample is visible when GET /v1/messages/{id} answers 200 (bench.kafka_freshness's check,
  polled as it polls: every 20 ms at first, then every 5-10% of the sample's age), and may take
  30 s;
- the RSS and open files are those of ``hub run all``'s two processes (the server and its
  stream roles' child, ``HUB_STREAM_ROLES_PROCESS``); the broker and PostgreSQL are not counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Result, Scale
from bench.client import install_uvloop
from bench.harness import open_fds
from bench.kafka_broker import Broker, ensure_postgres, fresh_database
from bench.kafka_cluster import Cluster, HubEnv
from bench.kafka_freshness import _pause
from bench.soak import rows
from bench.soak_load import AGENTS, Hub, Soak, create_agents, seed, sign_in_agents
from bench.workload import Workload

NAME = "kafka_soak"
SAMPLE_TIMEOUT = 30.0


def by_message(outcome: dict[str, Any]) -> tuple[str, Callable[[bytes], bool]]:
    """Visible once GET /v1/messages/{id} answers 200 (404 until then)."""
    return f"/v1/messages/{outcome['message_id']}", lambda _body: True


def run(scale: Scale, workdir: Path) -> Result:
    install_uvloop()
    ensure_postgres()
    workload = Workload(seed=62, new_share=0.1)
    with Broker(workdir) as broker, fresh_database("soak") as url:
        hub_env = HubEnv(broker.bootstrap, url, url)
        hub_env.kafka_init(workdir)
        with Cluster("all", hub_env, workdir, broker_pid=broker.pid) as cluster:
            server = cluster.servers["all"]
            time.sleep(1.0)
            idle = {"rss_mib": server.rss_kib() / 1024, "fds": open_fds(server.pid).total()}
            agents = create_agents(hub_env.settings(workdir / "data-tokens"), AGENTS)
            hub = Hub(
                label="`hub run all`",
                ingest_port=server.port,
                api_port=server.port,
                pid=server.pid,
                log_paths=[server.log_path],
                visible=by_message,
                pause=_pause,
                sample_timeout=SAMPLE_TIMEOUT,
                peers={"broker": broker.pid} if broker.pid is not None else {},
            )
            conversations = asyncio.run(seed(hub, workload, scale.seed_customers))
            sign_in_agents(server.base_url, agents)
            soak = asyncio.run(
                Soak(
                    hub, workload, agents, conversations, scale.soak_seconds, scale.soak_rate
                ).run()
            )
            soak["vm_hwm_mib"] = server.peak_rss_kib() / 1024
    soak["idle"] = idle
    soak["broker"] = broker.kind
    return Result(NAME, rows(NAME, hub.label, soak, idle), soak)
