"""Turn settings into the storage objects: the application on its recorder, keys, databases."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from hub import memory
from hub.config import ConfigurationError, Settings
from hub.domain.application import HubApplication
from hub.domain.consent import ConsentRules
from hub.domain.crypto import PersonalDataCipher
from hub.domain.publishing import PUBLISHED_TOPICS, to_envelope
from hub.events import Envelope
from hub.store.database import (
    create_db_engine,
    database_file,
    database_files,
    eventsourcing_env,
    store_file,
)
from hub.store.dead_letters import DeadLetters
from hub.store.history import select_notifications_at
from hub.store.keys import SqlKeyStore, SqlPeriodSecrets, derive_key
from hub.store.sqlite import private_files
from hub.store.transcoder import OrjsonTranscoder

log = logging.getLogger(__name__)

_ERASED = "Customer.Erased"


@dataclass
class Store:
    """Everything that holds state, opened together and closed together."""

    app: HubApplication
    cipher: PersonalDataCipher
    state_engine: Engine  # data keys and API tokens, beside the events
    views_engine: Engine  # read models
    dead_letters: DeadLetters  # in the state database, sealed with a master-key derivative
    forms_key: bytes  # keys the console's CSRF tokens (a master-key derivative)
    links_key: bytes  # signs links sent to customers (unsubscribe, opt-in; hub.web.links)
    webhooks_key: bytes  # seals webhook endpoints' secrets (hub.store.webhooks)

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
        # An erasure (recorded by any process): drop what this process keeps of the customer
        # before decrypting anything, so nothing below can use a cached key of theirs.
        erased = [e.originator_id for e, _ in events if type(e).__qualname__ == _ERASED]
        if erased:
            self.app.forget_customers(erased)
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

    def read_positions(self, positions: Iterable[int]) -> list[Envelope]:
        """The published events at these store positions, in store order, decrypted as
        :meth:`read_envelopes` does (positions of internal events, or of none, are left
        out). For the timeline as it was at a moment (``hub.runtime.history``)."""
        notifications = select_notifications_at(
            self.app.recorder, list(positions), PUBLISHED_TOPICS
        )
        to_domain_event = self.app.mapper.to_domain_event
        events = [(to_domain_event(n), n.id) for n in notifications]
        owners = {getattr(e, "customer_id", None) or e.originator_id for e, _ in events}
        self.cipher.prefetch(owners)
        envelopes = (to_envelope(event, position, self.cipher) for event, position in events)
        return [envelope for envelope in envelopes if envelope is not None]

    def close(self) -> None:
        self.app.close()
        self.state_engine.dispose()
        self.views_engine.dispose()


def secret_file(settings: Settings, file_name: str) -> Path | None:
    """Where a secret the settings do not give is kept: in the data directory of an embedded
    store (generated there at first open); None for a PostgreSQL store, whose processes must
    all be given the same secret."""
    return settings.data_dir / file_name if store_file(settings) is not None else None


def secret_bytes(value: str | None, name: str, file: Path | None) -> bytes:
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


def make_private(settings: Settings) -> None:
    """Take group and other access away from the hub's files that exist already (its SQLite
    files, the generated keys) and from the data directory holding them: a hub upgraded from
    a data directory created 0644/0755 gets fixed on start. New files are created private
    (:func:`private_files`)."""
    files = [
        *database_files(settings.resolved_store_url()),
        *database_files(settings.resolved_views_url()),
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
    """Open the event store, key store and view database the settings describe (and set
    this process's cache budget first: the caches made here and after size themselves by it)."""
    memory.configure(settings.cache_mib)
    env = eventsourcing_env(settings)
    make_private(settings)
    views_url = settings.resolved_views_url()
    with private_files():  # a data directory created here is the owner's only
        for file in (store_file(settings), database_file(views_url)):
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)

    secret = settings.master_key.get_secret_value() if settings.master_key else None
    pepper_value = settings.address_pepper.get_secret_value() if settings.address_pepper else None
    master_key = secret_bytes(secret, "master_key", secret_file(settings, "master.key"))
    pepper = secret_bytes(pepper_value, "address_pepper", secret_file(settings, "pepper.key"))

    state_engine = create_db_engine(
        settings.resolved_store_url(), synchronous=settings.sqlite_synchronous
    )
    views_engine = (
        state_engine
        if views_url == settings.resolved_store_url()
        else create_db_engine(views_url, synchronous=settings.sqlite_synchronous)
    )
    days = settings.retention.message_days
    cipher = PersonalDataCipher(
        SqlKeyStore(state_engine, master_key),
        periods=SqlPeriodSecrets(state_engine, master_key),
        retention=timedelta(days=days) if days is not None else None,
    )
    app = HubApplication(
        env,
        cipher=cipher,
        pepper=pepper,
        conversation_window=settings.conversation_window,
        transcoder=OrjsonTranscoder(),
    )
    app.inbound.use_endpoint_sources(settings.acquisition.endpoints)
    app.identity.configure(
        blocklist=settings.identity.blocklist,
        max_group_size=settings.identity.max_group_size,
        default_region=settings.default_region,
    )
    # SLA policies' segments count consent as the segments themselves do (docs/consent.md).
    consent = ConsentRules.configured(settings.consent)
    app.service_levels.granted_by_contact = consent.granted_by_contact
    return Store(
        app=app,
        cipher=cipher,
        state_engine=state_engine,
        views_engine=views_engine,
        dead_letters=DeadLetters(state_engine, master_key),
        forms_key=derive_key(master_key, b"interaction-hub console forms v1"),
        links_key=derive_key(master_key, b"interaction-hub signed links v1"),
        webhooks_key=derive_key(master_key, b"interaction-hub/webhooks/secrets/v1"),
    )
