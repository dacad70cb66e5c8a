"""Declarative field -> SQL mapping: what a type's fields read, without writing any SQL.

Each object type that the compiled path can answer names its table and, per GraphQL field, a
column, a to-one reference, a child list or a connection. The compiler (`plan`) turns these
into SQL; the tables live beside the Strawberry types (`SQL` in `graphql_schema/types/*`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["text", "text[]", "float", "datetime"]


@dataclass(frozen=True, slots=True)
class Column:
    """A scalar read from a column of the row."""

    column: str
    kind: Kind = "text"
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Ref:
    """The `target` row whose id equals this row's `column` (null when absent)."""

    target: str
    column: str
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Order:
    """One key of an ordering; `kind` is the Python type of its value in a cursor."""

    column: str
    descending: bool = False
    kind: type = str


@dataclass(frozen=True, slots=True)
class Children:
    """Every `target` row whose `key` column equals this row's id, in `order`."""

    target: str
    key: str
    order: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class Linked:
    """Every `target` row that a `table` row links to this row (`key` = this row's id, `link` =
    the target's id), in the target's `order`."""

    target: str
    table: str
    key: str
    link: str
    order: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class StoredList:
    """A study set's stored HYBRID list (app/reco/stored.py) as a RecommendationList, sliced to
    the `first` argument; a missing or stale row makes the whole operation fall back."""


@dataclass(frozen=True, slots=True)
class Eq:
    """Filter: the row's `column` equals the value (`empty_unset`: an empty value is no
    condition, as resolvers that test the value's truth read it)."""

    column: str
    empty_unset: bool = False


@dataclass(frozen=True, slots=True)
class Through:
    """Filter: a `table` row links this row (`key` = row id) to a `target` whose `column`
    equals the value; with `via`, the linked row (`link` column) is read from table `via`."""

    table: str
    key: str
    link: str
    column: str
    via: str | None = None


@dataclass(frozen=True, slots=True)
class Contains:
    """Filter: case-insensitive substring of `column` (blank: no condition)."""

    column: str


@dataclass(frozen=True, slots=True)
class FullText:
    """Filter: web-search syntax over the tsvector `column`, ordered by rank then id."""

    column: str
    config: str = "english"


Filter = Eq | Through | Contains | FullText


@dataclass(frozen=True, slots=True)
class Connection:
    """A Relay connection over `table` rows (the edges), keyset-paginated by `order`.

    `node_column` None: the edge row is the node; else the node is the `node` row whose id is
    that column. `key`: the column equal to the parent's id (None for a root connection).
    `owner`: a student's own rows only (`app.db.study.visible_owner`: the viewer's user id is a
    bind parameter; any other viewer makes the request fall back to normal execution).
    """

    connection: str
    edge: str
    node: str
    table: str
    order: tuple[Order, ...]
    key: str | None = None
    node_column: str | None = None
    owner: str | None = None  # rows whose `owner` column is the viewer's own user id only
    edge_fields: Mapping[str, Column] = field(default_factory=dict)
    filters: Mapping[str, Filter] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lookup:
    """Root: the `target` row whose id is the `id` argument, or null."""

    target: str


@dataclass(frozen=True, slots=True)
class All:
    """Root: every `target` row, in `order`."""

    target: str
    order: tuple[Order, ...]


FieldSql = Column | Ref | Children | Linked | StoredList | Connection | Lookup | All


@dataclass(frozen=True, slots=True)
class Table:
    """An object type read from one table; fields absent here are not compiled."""

    table: str
    fields: Mapping[str, FieldSql]
