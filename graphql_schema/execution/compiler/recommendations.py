"""StudySet.recommendations in SQL: the stored HYBRID list (app/reco/stored.py), sliced to `first`.

What normal execution answers for a study set outside experiments (`resolvers.recommendations.
study_set_recommendations` through the reco service, which serves and fills the same rows):
the list's items sliced to `first` (checked by `service.check_first`: out of range, the
request falls back and normal execution reports it), those whose book no longer exists left
out, `experiment` and `variant` null. A missing or stale row is NULL, which the statement
carries up to its root column: the whole operation falls back, and normal execution computes,
stores and serves the list.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from graphql import GraphQLField, GraphQLObjectType, get_named_type

from app.core.settings import RecoSettings
from app.reco.stored import fresh
from graphql_schema.execution.compiler.base import Builder, Fallback, Unsupported, fields_object
from graphql_schema.execution.compiler.jsonsql import float_json

if TYPE_CHECKING:
    from graphql.execution.collect_fields import FieldDetails


def _first(limit: int) -> Any:
    def values(args: dict[str, Any]) -> tuple[Hashable, list[Any]]:
        value = args.get("first")
        n = 10 if value is None else value
        if not 1 <= n <= limit:
            raise Fallback("first")
        return (), [n]

    return values


def stored_list_sql(
    c: Builder,
    reco: RecoSettings,
    field: GraphQLField,
    details: list[FieldDetails],
    parent: str,
) -> str:
    """The RecommendationList JSON of the study set row `parent`, or NULL (fall back)."""
    if reco.experiments or reco.stored_list_max_age_seconds <= 0:
        raise Unsupported("experiments, or no stored lists")
    (first,) = c.site(field, details[0].node, _first(reco.max_first))
    n = f"{first}::int"
    row = c.alias()
    list_type = get_named_type(field.type)
    assert isinstance(list_type, GraphQLObjectType)

    def render(name: str, sub: list[FieldDetails]) -> str:
        if name == "strategy":
            return f"to_json({row}.strategy)::text"
        if name in ("experiment", "variant"):
            return "'null'"
        if name == "items":
            return _items(c, list_type.fields[name], sub, row, n)
        raise Unsupported(f"{list_type.name}.{name}")

    obj = fields_object(c, list_type, details, render)
    return (
        f"(SELECT CASE WHEN {fresh(row, reco.stored_list_max_age_seconds)} THEN {obj}"
        f" END FROM study_set_lists {row} WHERE {row}.study_set_id = {parent}.id)"
    )


def _items(c: Builder, field: GraphQLField, details: list[FieldDetails], row: str, n: str) -> str:
    """The first `n` items whose book exists, in the list's order."""
    item_type = get_named_type(field.type)
    assert isinstance(item_type, GraphQLObjectType)
    u, book = c.alias(), c.alias()

    def render(name: str, sub: list[FieldDetails]) -> str:
        if name == "score":
            return float_json(f"{u}.score")
        if name == "reasons":
            return f"{u}.reasons"  # the JSON text of the array, as orjson wrote it
        if name == "book":
            return c.object("Book", book, sub)
        raise Unsupported(f"{item_type.name}.{name}")

    obj = fields_object(c, item_type, details, render)
    slices = ", ".join(f"{row}.{col}[1:{n}]" for col in ("book_ids", "scores", "reasons"))
    return (
        f"(SELECT '[' || coalesce(string_agg({obj}, ',' ORDER BY {u}.i), '') || ']'"
        f" FROM unnest({slices}) WITH ORDINALITY AS {u}(book_id, score, reasons, i)"
        f" JOIN {c.table('Book').table} {book} ON {book}.id = {u}.book_id)"
    )
