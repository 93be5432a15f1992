"""The full-text index of each database behind ``search_documents`` (``hub.projections.search``).

- SQLite: an FTS5 table over the documents' ``title`` and ``body`` (external content: the text
  is stored once, in ``search_documents``), kept in step by triggers, tokenized by
  ``unicode61 remove_diacritics 2`` (case and accents folded). FTS5 deletes leave the old
  words in its index until its segments merge, so after deleting documents of an erased
  customer (or blanking old bodies) the index is merged at once (``optimize``).
- PostgreSQL: the ``terms`` column, a ``tsvector`` of the document's words (``simple``
  configuration, accents folded by the ``unaccent`` extension through ``hub_unaccent``, an
  IMMUTABLE wrapper), with a GIN index. Without the extension the hub refuses to start
  (:class:`SearchUnavailable`): search would quietly stop matching "zasu" to "Žąsų".

User input reaches neither as syntax: FTS5 gets quoted words (``search_text.to_fts5``) and
PostgreSQL gets each term as a bound parameter of ``phraseto_tsquery``/``to_tsquery``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import quoted_name
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from hub.projections.search_text import Query, Term, to_fts5
from hub.sql import lock_keys

__all__ = [
    "PageSource",
    "SearchUnavailable",
    "create",
    "drop",
    "matches",
    "merge_deleted",
    "page_source",
    "tsvector",
]

_ADD = "INSERT INTO search_fts(rowid, title, body) VALUES (new.position, new.title, new.body);"
_REMOVE = (
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.position, old.title, old.body);"
)
#: SQL that folds accents, for documents and queries alike (PostgreSQL).
UNACCENT_FUNCTION = "hub_unaccent"


class SearchUnavailable(RuntimeError):
    """The database cannot do accent-folding full-text search (PostgreSQL without unaccent)."""


def create(conn: Connection) -> None:
    """Create the index beside ``search_documents`` (idempotent)."""
    if conn.dialect.name == "postgresql":
        _create_postgres(conn)
    else:
        for statement in _SQLITE_DDL:
            conn.exec_driver_sql(statement)


def drop(conn: Connection) -> None:
    """Drop what :func:`create` made (before ``search_documents`` is dropped)."""
    if conn.dialect.name != "postgresql":
        for statement in _SQLITE_DROP:
            conn.exec_driver_sql(statement)


def merge_deleted(conn: Connection) -> None:
    """After documents were deleted or blanked: no word of them stays in the index's files
    (SQLite merges its FTS5 segments; PostgreSQL's rows are gone with the documents)."""
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('optimize')")


def tsvector(words: ColumnElement[Any]) -> ColumnElement[Any]:
    """A document's ``terms`` from its words (PostgreSQL)."""
    return func.to_tsvector(literal_column("'simple'::regconfig"), _unaccent(words))


@dataclass(frozen=True)
class PageSource:
    """Where a page's keys are read from, and its columns by name."""

    table: FromClause
    c: Mapping[str, ColumnElement[Any]]


def page_source(conn: Connection, documents: Table, by_customer: bool) -> PageSource:
    """Where a page's keys are read: ``documents``; on SQLite, unless a customer's index is
    better, through ``ix_search_page`` (position, time, kind, channel, direction). Without
    statistics SQLite would look each match up in the table itself, whose rows carry the
    texts: 5x slower for a word thousands of documents have. (SQLAlchemy has no INDEXED BY:
    the columns are named unqualified, from that one table.)"""
    if conn.dialect.name == "postgresql" or by_customer:
        return PageSource(documents, {c.name: c for c in documents.columns})
    forced = table(quoted_name(f"{documents.name} INDEXED BY ix_search_page", quote=False))
    return PageSource(forced, {c.name: literal_column(c.name, c.type) for c in documents.columns})


def matches(conn: Connection, source: PageSource, query: Query) -> ColumnElement[bool]:
    """The condition that a row of ``source`` (the documents) matches ``query``."""
    if conn.dialect.name == "postgresql":
        return _postgres_match(query)
    fts = table("search_fts", column("rowid"))
    found = select(fts.c.rowid).where(
        text("search_fts MATCH :fts_query").bindparams(fts_query=to_fts5(query))
    )
    return source.c["position"].in_(found)


# -- SQLite ---------------------------------------------------------------------------------


#: The FTS5 table over ``search_documents`` and the triggers that keep it in step (the
#: documents' words in, their old words out; FTS5 needs the old text to remove a row's words).
_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(title, body, "
    "content='search_documents', content_rowid='position', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS search_documents_insert AFTER INSERT ON search_documents "
    "BEGIN " + _ADD + " END",
    "CREATE TRIGGER IF NOT EXISTS search_documents_delete AFTER DELETE ON search_documents "
    "BEGIN " + _REMOVE + " END",
    "CREATE TRIGGER IF NOT EXISTS search_documents_update "
    "AFTER UPDATE OF title, body ON search_documents BEGIN " + _REMOVE + " " + _ADD + " END",
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS search_documents_insert",
    "DROP TRIGGER IF EXISTS search_documents_delete",
    "DROP TRIGGER IF EXISTS search_documents_update",
    "DROP TABLE IF EXISTS search_fts",
)


# -- PostgreSQL -----------------------------------------------------------------------------


def _create_postgres(conn: Connection) -> None:
    lock_keys(conn, "hub.search.schema", [1])  # processes starting together take turns
    schema = conn.scalar(
        text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'unaccent'")
    )
    if schema is None:
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        except DBAPIError as exc:
            raise SearchUnavailable(
                "full-text search needs PostgreSQL's unaccent extension (in postgresql-contrib), "
                "and this database user may not create it: run `CREATE EXTENSION unaccent;` as "
                f"a superuser in the hub's database, then start again ({exc.orig})"
            ) from exc
        schema = conn.scalar(
            text(
                "SELECT extnamespace::regnamespace::text FROM pg_extension "
                "WHERE extname = 'unaccent'"
            )
        )
    defined = conn.scalar(
        text("SELECT to_regprocedure(:signature) IS NOT NULL"),
        {"signature": f"{UNACCENT_FUNCTION}(text)"},
    )
    if not defined:
        conn.exec_driver_sql(
            f"CREATE FUNCTION {UNACCENT_FUNCTION}(text) RETURNS text "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
            f"AS $$ SELECT {schema}.unaccent('{schema}.unaccent'::regdictionary, $1) $$"
        )


def _postgres_match(query: Query) -> ColumnElement[bool]:
    """``terms @@ (…)``: each term a tsquery of its words (bound parameters), combined with
    ``&&``, ``||`` and ``!!``."""
    params: dict[str, str] = {}

    def bound(value: str) -> str:
        name = f"sq_{len(params)}"
        params[name] = value
        return f"{UNACCENT_FUNCTION}(:{name})"

    def term(t: Term) -> str:
        if not t.prefix:
            return f"phraseto_tsquery('simple', {bound(' '.join(t.words))})"
        # The last word as a quoted lexeme with :*; it has letters and digits only, and
        # quotes or backslashes (that unaccent would never make of them) are removed.
        lexeme = f"replace(replace({bound(t.words[-1])}, E'\\\\', ''), '''', '')"
        prefix = f"to_tsquery('simple', '''' || {lexeme} || ''':*')"
        if len(t.words) == 1:
            return prefix
        before = f"phraseto_tsquery('simple', {bound(' '.join(t.words[:-1]))})"
        return f"tsquery_phrase({before}, {prefix})"

    groups = ["(" + " || ".join(term(t) for t in group) + ")" for group in query.groups]
    excluded = [f"!!({term(t)})" for t in query.excluded]
    condition = "search_documents.terms @@ (" + " && ".join(groups + excluded) + ")"
    return text(condition).bindparams(**params)  # type: ignore[return-value]


def _unaccent(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return getattr(func, UNACCENT_FUNCTION)(value)  # type: ignore[no-any-return]
