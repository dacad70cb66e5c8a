"""A Relay connection in SQL: keyset page of `first + 1` rows, edges, cursors and pageInfo.

Mirrors `app/db/catalog.py` and `app/db/pagination.py`: the same orderings (id; rank then id
for a text search; weight then book id, descending, for a topic's books), the same keyset
conditions, `first` defaults and maximum checked by `PageArgs.parse`, cursors decoded by
`decode_cursor` (any argument error: the request falls back, and normal execution reports it).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any, cast

from graphql import GraphQLField, GraphQLObjectType, get_named_type

from app.core.errors import InvalidArgument
from app.db.catalog import MAX_SEARCH_LENGTH
from app.db.pagination import PageArgs, decode_cursor
from graphql_schema.execution.compiler.base import Builder, Fallback, Unsupported, fields_object
from graphql_schema.execution.compiler.jsonsql import concat, cursor, json_lit, lit, value_json
from graphql_schema.execution.compiler.mapping import (
    Connection,
    Contains,
    Eq,
    FullText,
    Through,
)

if TYPE_CHECKING:
    from graphql.execution.collect_fields import FieldDetails


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _values(spec: Connection, pages: tuple[int, int]) -> Any:
    def values(args: dict[str, Any]) -> tuple[Hashable, list[Any]]:
        try:
            page = PageArgs.parse(args.get("first"), args.get("after"), *pages)
        except InvalidArgument:
            raise Fallback("first/after") from None
        params: list[Any] = [page.first]
        active: list[str] = []
        kinds: tuple[type, ...] = tuple(o.kind for o in spec.order)
        for name, value in (args.get("filter") or {}).items():
            if value is None:
                continue
            kind = spec.filters.get(name)
            if isinstance(kind, FullText | Contains):
                text = value.strip()[:MAX_SEARCH_LENGTH]
                if not text:
                    continue
                if isinstance(kind, FullText):
                    kinds = (float, str)
                params.append(text if isinstance(kind, FullText) else f"%{_escape_like(text)}%")
            else:
                if isinstance(kind, Eq) and kind.empty_unset and not value:
                    continue
                params.append(str(value))
            active.append(name)
        if page.after is not None:
            try:
                params += decode_cursor(page.after, kinds)
            except InvalidArgument:
                raise Fallback("after") from None
        return (tuple(active), page.after is not None), params

    return values


def connection_sql(
    c: Builder,
    spec: Connection,
    field: GraphQLField,
    details: list[FieldDetails],
    parent: str | None,
) -> str:
    placeholders = c.site(field, details[0].node, _values(spec, c.pages))
    active, after = cast(tuple[tuple[str, ...], bool], c.sites[-1].shape)
    n = f"{placeholders[0]}::int"
    a = c.alias()
    conds, lateral, order = _where(spec, a, parent, active, after, iter(placeholders[1:]))
    if spec.owner is not None:
        conds.insert(0, f"{a}.{spec.owner} = {c.scope(field, details[0].node)}")
    by = ", ".join(f"{e}{' DESC' if d else ''}" for e, d, _ in order)

    conn_type = get_named_type(field.type)
    assert isinstance(conn_type, GraphQLObjectType)
    edge_type = get_named_type(conn_type.fields["edges"].type)
    assert isinstance(edge_type, GraphQLObjectType)
    columns = [f"row_number() OVER (ORDER BY {by}) AS rn"]
    aggregates = ["count(*) AS total"]
    needs: set[str] = set()  # what the selection reads: "cursor", "end"
    parts: list[str] = []
    for i, (key, sub) in enumerate(c.subfields(conn_type, details).items()):
        parts.append(lit(("," if i else "{") + f'"{key}":'))
        name = sub[0].node.name.value
        if name == "__typename":
            parts.append(json_lit(conn_type.name))
        elif name == "pageInfo":
            parts.append(_page_info(c, conn_type.fields[name], sub, n, needs))
        elif name == "edges":
            nulls = c.nulls
            edge = _edge(c, spec, edge_type, a, sub, columns, needs)
            edges = (
                f"coalesce(string_agg({edge}, ',' ORDER BY e.rn) FILTER (WHERE e.rn <= {n}), '')"
            )
            if c.nulls != nulls:
                # an edge that may be NULL (a stale stored list): string_agg would skip it
                # silently; NULL instead, and the statement falls back to normal execution
                every = f"bool_and(({edge}) IS NOT NULL) FILTER (WHERE e.rn <= {n})"
                edges = f"CASE WHEN {every} IS NOT FALSE THEN {edges} END"
            aggregates.append(f"{edges} AS j{i}")
            parts.append(f"'[' || g.j{i} || ']'")
        else:
            raise Unsupported(f"{conn_type.name}.{name}")
    parts.append("'}'" if parts else "'{}'")
    if needs:  # cursors are only computed when an edge's cursor or endCursor is selected
        columns.append(f"{cursor([_scalar(e, k) for e, _, k in order])} AS c")
    if "end" in needs:
        aggregates.append(f"(array_agg(e.c ORDER BY e.rn DESC) FILTER (WHERE e.rn <= {n}))[1] AS c")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    inner = (
        f"SELECT {', '.join(columns)} FROM {spec.table} {a}{lateral}{where}"
        f" ORDER BY {by} LIMIT {n} + 1"
    )
    return f"(SELECT {concat(parts)} FROM (SELECT {', '.join(aggregates)} FROM ({inner}) e) g)"


def _where(
    spec: Connection,
    a: str,
    parent: str | None,
    active: tuple[str, ...],
    after: bool,
    rest: Iterator[str],
) -> tuple[list[str], str, list[tuple[str, bool, type]]]:
    """The conditions, the rank's lateral join (text search) and the order of the page."""
    conds: list[str] = []
    if parent is not None:
        conds.append(f"{a}.{spec.key} = {parent}.id")
    lateral = ""
    order = [(f"{a}.{o.column}", o.descending, o.kind) for o in spec.order]
    for name in active:
        kind, p = spec.filters.get(name), next(rest)
        if isinstance(kind, Eq):
            conds.append(f"{a}.{kind.column} = {p}")
        elif isinstance(kind, Through):
            link, join = f"l.{kind.column}", ""
            if kind.via is not None:
                join, link = f" JOIN {kind.via} v ON v.id = l.{kind.link}", f"v.{kind.column}"
            conds.append(
                f"EXISTS (SELECT 1 FROM {kind.table} l{join} WHERE l.{kind.key} = {a}.id"
                f" AND {link} = {p})"
            )
        elif isinstance(kind, Contains):
            conds.append(f"{a}.{kind.column} ILIKE {p} ESCAPE '\\'")
        elif isinstance(kind, FullText):
            query = f"websearch_to_tsquery({lit(kind.config)}, {p})"
            conds.append(f"{a}.{kind.column} @@ {query}")
            rank = f"ts_rank({a}.{kind.column}, {query})::float8"
            lateral = f" CROSS JOIN LATERAL (SELECT {rank} AS rank) r"
            order = [("r.rank", True, float), (f"{a}.id", False, str)]
        else:
            raise Unsupported(f"filter {name}")
    if after:
        conds.append(_keyset(order, [next(rest) for _ in order]))
    # books_by_publishers also writes `id > ''` without a cursor: ids are never empty (ingestion
    # refuses them), and that condition steers the planner to the primary key (10x slower)
    return conds, lateral, order


def _scalar(expr: str, kind: type) -> str:
    return value_json(expr, "float" if kind is float else "text", False)


def _keyset(order: list[tuple[str, bool, type]], params: list[str]) -> str:
    typed = [
        f"{p}::float8" if k is float else p for p, (_, _, k) in zip(params, order, strict=True)
    ]
    directions = {d for _, d, _ in order}
    if len(directions) == 1:
        op = "<" if directions.pop() else ">"
        if len(order) == 1:
            return f"{order[0][0]} {op} {typed[0]}"
        return f"({', '.join(e for e, _, _ in order)}) {op} ({', '.join(typed)})"
    (first, d1, _), (second, d2, _) = order
    if len(order) != 2:
        raise Unsupported("mixed keyset order")
    op1, op2 = ("<" if d1 else ">"), ("<" if d2 else ">")
    return f"({first} {op1} {typed[0]} OR ({first} = {typed[0]} AND {second} {op2} {typed[1]}))"


def _page_info(
    c: Builder, field: GraphQLField, details: list[FieldDetails], n: str, needs: set[str]
) -> str:
    type_ = get_named_type(field.type)
    assert isinstance(type_, GraphQLObjectType)

    def render(name: str, sub: list[FieldDetails]) -> str:
        if name == "hasNextPage":
            return f"CASE WHEN g.total > {n} THEN 'true' ELSE 'false' END"
        if name == "endCursor":
            needs.add("end")
            return "coalesce('\"' || g.c || '\"', 'null')"
        raise Unsupported(f"PageInfo.{name}")

    return fields_object(c, type_, details, render)


def _edge(
    c: Builder,
    spec: Connection,
    edge_type: GraphQLObjectType,
    a: str,
    details: list[FieldDetails],
    columns: list[str],
    needs: set[str],
) -> str:
    """The JSON of one edge, built over the inner row `e`; row-dependent parts become columns."""
    parts: list[str] = []
    for i, (key, sub) in enumerate(c.subfields(edge_type, details).items()):
        parts.append(lit(("," if i else "{") + f'"{key}":'))
        name = sub[0].node.name.value
        if name == "__typename":
            parts.append(json_lit(edge_type.name))
            continue
        if name == "cursor":
            parts.append("'\"' || e.c || '\"'")
            needs.add("cursor")
            continue
        if name == "node":
            if spec.node_column is None:
                expr = c.object(spec.node, a, sub)
            else:
                b = c.alias()
                obj = c.object(spec.node, b, sub)
                table = c.table(spec.node).table
                expr = f"(SELECT {obj} FROM {table} {b} WHERE {b}.id = {a}.{spec.node_column})"
        elif (column := spec.edge_fields.get(name)) is not None:
            expr = value_json(f"{a}.{column.column}", column.kind, column.nullable)
        else:
            raise Unsupported(f"{edge_type.name}.{name}")
        columns.append(f"{expr} AS x{len(columns)}")
        parts.append(f"e.x{len(columns) - 1}")
    parts.append("'}'" if parts else "'{}'")
    return concat(parts)
