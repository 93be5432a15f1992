"""Faust's aiokafka driver with the one consumer setting Faust does not expose: how long a
fetch may wait on the broker for data.

Faust builds its worker consumer with ``fetch_max_wait_ms=1500``, hard-coded. A broker that
holds a fetch covering several partitions until that wait runs out (Tansu does; so does any
broker while some of the fetched partitions are empty, when ``fetch.min.bytes`` is not met)
then delivers records in rounds of up to 1.5 s: a stage of the pipeline waits that long
whenever one of its partitions has nothing new, both while catching up and under a trickle.
The workers of the hub use :class:`HubFaustApp`, whose consumer waits at most
``FETCH_MAX_WAIT_MS``; an idle consumer then sends a few more (empty) fetches a second.
"""

from __future__ import annotations

from typing import Any, ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

#: The longest a fetch waits on the broker for data (ms). Low: a stage's latency includes it.
FETCH_MAX_WAIT_MS = 50


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read when the consumer starts (it builds its fetcher then), which comes after this.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[Any]] = _Consumer


class HubFaustApp(faust.App):
    """A Faust app on the aiokafka driver above (``kafka://`` URLs only)."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
