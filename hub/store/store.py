"""Turn settings into the storage objects: the application on its recorder, keys, databases."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from hub.config import ConfigurationError, Settings
from hub.domain.application import HubApplication
from hub.domain.crypto import PersonalDataCipher
from hub.domain.publishing import PUBLISHED_TOPICS, to_envelope
from hub.events import Envelope
from hub.store.database import create_db_engine
from hub.store.dead_letters import DeadLetters
from hub.store.keys import SqlKeyStore, derive_key
from hub.store.sqlite import private_files
from hub.store.transcoder import OrjsonTranscoder

log = logging.getLogger(__name__)


@dataclass
class Store:
    """Everything that holds state, opened together and closed together."""

    app: HubApplication
    cipher: PersonalDataCipher
    state_engine: Engine  # data keys and API tokens, beside the events
    views_engine: Engine  # read models
    dead_letters: DeadLetters  # in the state database, sealed with a master-key derivative
    forms_key: bytes  # keys the console's CSRF tokens (a master-key derivative)

    @property
    def backend(self) -> str:
        return self.state_engine.dialect.name

    def read_envelopes(self, after: int, limit: int) -> tuple[list[Envelope], int]:
        """Published events after position ``after``, and the last position read
        (``after`` when there was nothing new). Internal events are skipped in the query."""
        # Read the top first: when fewer than ``limit`` published events lie below it, every
        # position up to it has been seen, internal events included (a transaction of only
        # internal events, such as a dispatch attempt, must not hold the readers back).
        top = self.app.recorder.max_notification_id() or 0
        notifications = self.app.recorder.select_notifications(
            start=after, limit=limit, stop=top, topics=PUBLISHED_TOPICS, inclusive_of_start=False
        )
        to_domain_event = self.app.mapper.to_domain_event
        events = [(to_domain_event(n), n.id) for n in notifications]
        # One read for the data keys of the batch's customers, not one per new customer.
        owners = {getattr(e, "customer_id", None) or e.originator_id for e, _ in events}
        self.cipher.prefetch(owners)
        envelopes = []
        for event, position in events:
            envelope = to_envelope(event, position, self.cipher)
            if envelope is not None:
                envelopes.append(envelope)
        if len(notifications) < limit:
            return envelopes, max(top, after)
        return envelopes, notifications[-1].id

    def close(self) -> None:
        self.app.close()
        self.state_engine.dispose()
        self.views_engine.dispose()


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store URL."""
    url = make_url(settings.resolved_store_url())
    common = {"CREATE_TABLE": "y"}
    if url.drivername.startswith("sqlite"):
        if not url.database:
            raise ConfigurationError("HUB_STORE_URL: a sqlite URL needs a file path")
        return common | {
            "PERSISTENCE_MODULE": "hub.store.sqlite:HubSQLiteFactory",
            "SQLITE_DBNAME": url.database,
            "SQLITE_LOCK_TIMEOUT": "10",
            "HUB_SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
            "APPLICATION_RECORDER_TOPIC": "hub.store.recorders:HubSQLiteApplicationRecorder",
        }
    if url.drivername.startswith("postgres"):
        return common | {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "postgres",
            "POSTGRES_HOST": url.host or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_CONNECT_TIMEOUT": "2",
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_PRE_PING": "y",
            "APPLICATION_RECORDER_TOPIC": "hub.store.recorders:HubPostgresApplicationRecorder",
        }
    raise ConfigurationError(
        f"HUB_STORE_URL: unsupported scheme {url.drivername!r} (use sqlite:/// or postgresql://)"
    )


def _secret_bytes(value: str | None, name: str, file: Path | None) -> bytes:
    """A 32-byte secret from settings, or generated once into ``file`` (embedded default)."""
    if value:
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ConfigurationError(f"HUB_{name.upper()} is not valid base64") from None
        if len(raw) != 32:
            raise ConfigurationError(f"HUB_{name.upper()} must decode to 32 bytes")
        return raw
    if file is None:
        raise ConfigurationError(
            f"HUB_{name.upper()} is required with a PostgreSQL store "
            "(every process must share it): generate one with `hub keygen`"
        )
    if file.exists():
        return base64.b64decode(file.read_text().strip())
    raw = os.urandom(32)
    with private_files():  # the data directory too, when this creates it
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(raw).decode() + "\n")
    return raw


def _sqlite_files(url: str) -> list[Path]:
    """A SQLite database's file and the side files SQLite keeps beside it."""
    parsed = make_url(url)
    name = parsed.database
    if not parsed.drivername.startswith("sqlite") or not name or name == ":memory:":
        return []
    return [Path(name), *(Path(f"{name}{side}") for side in ("-wal", "-shm", "-journal"))]


def make_private(settings: Settings) -> None:
    """Take group and other access away from the hub's files that exist already (its SQLite
    files, the generated keys) and from the data directory holding them: a hub upgraded from
    a data directory created 0644/0755 gets fixed on start. New files are created private
    (:func:`private_files`)."""
    files = [
        *_sqlite_files(settings.resolved_store_url()),
        *_sqlite_files(settings.resolved_views_url()),
        settings.data_dir / "master.key",
        settings.data_dir / "pepper.key",
    ]
    existing = [path for path in files if path.exists()]
    data_dir = settings.data_dir.resolve()
    if any(path.resolve().parent == data_dir for path in existing):
        existing.append(data_dir)
    changed = []
    for path in existing:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & ~0o077)
                changed.append(str(path))
        except FileNotFoundError:  # a side file SQLite removed meanwhile
            continue
        except OSError as exc:  # another user's file: say so; the hub still works
            log.warning("could not make %s owner-only: %s", path, exc)
    if changed:
        log.info("made owner-only (were open to others): %s", ", ".join(changed))


def open_store(settings: Settings) -> Store:
    """Open the event store, key store and view database the settings describe."""
    env = eventsourcing_env(settings)
    embedded = env["PERSISTENCE_MODULE"].startswith("hub.store.sqlite")
    make_private(settings)
    views_url = settings.resolved_views_url()
    with private_files():  # a data directory created here is the owner's only
        if embedded:
            Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
        if views_url.startswith("sqlite:///"):
            Path(make_url(views_url).database or ".").parent.mkdir(parents=True, exist_ok=True)

    secret = settings.master_key.get_secret_value() if settings.master_key else None
    pepper_value = settings.address_pepper.get_secret_value() if settings.address_pepper else None
    master_key = _secret_bytes(
        secret, "master_key", settings.data_dir / "master.key" if embedded else None
    )
    pepper = _secret_bytes(
        pepper_value, "address_pepper", settings.data_dir / "pepper.key" if embedded else None
    )

    state_engine = create_db_engine(
        settings.resolved_store_url(), synchronous=settings.sqlite_synchronous
    )
    views_engine = (
        state_engine
        if views_url == settings.resolved_store_url()
        else create_db_engine(views_url, synchronous=settings.sqlite_synchronous)
    )
    cipher = PersonalDataCipher(SqlKeyStore(state_engine, master_key))
    app = HubApplication(
        env,
        cipher=cipher,
        pepper=pepper,
        conversation_window=settings.conversation_window,
        transcoder=OrjsonTranscoder(),
        cache_size=settings.aggregate_cache_size,
    )
    return Store(
        app=app,
        cipher=cipher,
        state_engine=state_engine,
        views_engine=views_engine,
        dead_letters=DeadLetters(state_engine, master_key),
        forms_key=derive_key(master_key, b"interaction-hub console forms v1"),
    )
