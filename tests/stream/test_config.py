"""The Kafka settings reach the Faust workers: groups per role, guarantees, credentials."""

from __future__ import annotations

from pathlib import Path

from hub.config import KafkaSettings
from hub.stream.app import _credentials, _faust_app, group_id
from tests.support.store import SettingsFactory


def test_each_worker_role_has_its_own_group(make_settings: SettingsFactory) -> None:
    settings = make_settings("sqlite", kafka=KafkaSettings(topic_prefix="acme."))
    process, project = (_faust_app(settings, role) for role in ("process", "project"))
    assert (process.conf.id, project.conf.id) == ("acme.hub-process", "acme.hub-project")
    assert group_id(settings.kafka, "process") == "acme.hub-process"
    assert Path(process.conf.datadir).is_relative_to(settings.data_dir)


def test_transactions_and_timing_are_passed_to_faust(make_settings: SettingsFactory) -> None:
    kafka = KafkaSettings(transactions=True, session_timeout=12, commit_interval=0.5)
    app = _faust_app(make_settings("sqlite", kafka=kafka), "process")
    assert app.conf.processing_guarantee.value == "exactly_once"
    assert (app.conf.broker_session_timeout, app.conf.broker_commit_interval) == (12, 0.5)
    default = _faust_app(make_settings("sqlite"), "process")
    assert default.conf.processing_guarantee.value == "at_least_once"


def test_sasl_over_ssl_becomes_faust_credentials() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="hub",
        sasl_password="s3cret",
    )
    credentials = _credentials(kafka)
    assert (credentials.username, credentials.password) == ("hub", "s3cret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None
    assert kafka.client_options()["sasl_plain_password"] == "s3cret"
    assert _credentials(KafkaSettings()) is None


def test_ingest_partitions_keys_as_every_kafka_client() -> None:
    """hub.inbound is keyed by address: the cached partitioner puts each key where aiokafka's
    default (murmur2, as the Java clients) does, for any partition count."""
    from aiokafka.partitioner import DefaultPartitioner

    from hub.stream.topics import partition as _partition

    for n in range(500):
        key = f"phone:+49151{n:08d}".encode()
        for count in (1, 6, 12, 31):
            partitions = list(range(count))
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert _partition(key, partitions, partitions) == expected
            assert _partition(key, partitions, partitions) == expected  # cached, the same
    assert _partition(None, [0, 1, 2], [1]) == 1  # no key: an available partition
