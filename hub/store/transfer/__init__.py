"""Moving a hub's stored state between stores: ``hub store export`` and ``hub store import``.

The usual move is from the embedded runtime (SQLite files in a data directory) to the
distributed one (PostgreSQL), but any store the settings can describe works on either side.
What moves is what cannot be rebuilt: the events, the per-customer data keys and the API
tokens. The views are rebuilt from the events afterwards (``hub projections rebuild``, or the
relay and projector of the distributed runtime).

- :mod:`~hub.store.transfer.format`: the export file (its header, its lines, gzip), read and
  written;
- :mod:`~hub.store.transfer.checks`: a whole file checked before anything is written, and the
  keys a target needs (by fingerprint);
- :mod:`~hub.store.transfer.exporting`: :func:`export_store`;
- :mod:`~hub.store.transfer.importing`: :func:`import_store`, resumable rather than atomic.
"""

from __future__ import annotations

from hub.store.transfer.checks import check_export, configured_secrets, fingerprint
from hub.store.transfer.exporting import ExportSummary, export_store
from hub.store.transfer.format import ExportHeader, TransferError
from hub.store.transfer.importing import ImportSummary, import_store

__all__ = [
    "ExportHeader",
    "ExportSummary",
    "ImportSummary",
    "TransferError",
    "check_export",
    "configured_secrets",
    "export_store",
    "fingerprint",
    "import_store",
]
