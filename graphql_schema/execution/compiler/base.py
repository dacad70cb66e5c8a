"""What the compiler's modules share: its two refusals, argument sites, and the builder's face."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from graphql import FieldNode, GraphQLField, GraphQLObjectType

from graphql_schema.execution.compiler.jsonsql import concat, json_lit, lit
from graphql_schema.execution.compiler.mapping import Table

if TYPE_CHECKING:
    from graphql.execution.collect_fields import FieldDetails


class Unsupported(Exception):
    """The operation (for these variables' shape) cannot be compiled: normal execution."""


class Fallback(Exception):
    """This request cannot use the plan (an argument error, ...): normal execution says why."""


Values = Callable[[dict[str, Any]], tuple[Hashable, list[Any]]]


@dataclass(frozen=True, slots=True)
class Site:
    """A field whose arguments give bind parameters: `values(args)` -> (shape, parameters)."""

    field: GraphQLField
    node: FieldNode
    values: Values
    shape: Hashable
    viewer: bool = False  # its one parameter is the viewer's scope (Plan.for_viewer), no argument


class Builder(Protocol):
    """What a connection's SQL needs of the compiler walking the operation (plan.Compiler)."""

    pages: tuple[int, int]
    sites: list[Site]
    nulls: int  # values emitted so far that may be NULL (the statement must then fall back)

    def alias(self) -> str: ...
    def site(self, field: GraphQLField, node: FieldNode, values: Values) -> list[str]: ...
    def scope(self, field: GraphQLField, node: FieldNode) -> str: ...
    def subfields(self, type_: GraphQLObjectType, details: list[FieldDetails]) -> Any: ...
    def table(self, type_name: str) -> Table: ...
    def object(self, type_name: str, alias: str, details: list[FieldDetails]) -> str: ...


def fields_object(
    c: Builder,
    type_: GraphQLObjectType,
    details: list[FieldDetails],
    render: Callable[[str, list[FieldDetails]], str],
) -> str:
    """The JSON object text of the selection `details` of `type_`, keys in response order:
    `__typename` is the type's name, any other field `render(field name, its details)` (which
    raises Unsupported for a field it cannot compile)."""
    parts: list[str] = []
    for i, (key, sub) in enumerate(c.subfields(type_, details).items()):
        parts.append(lit(("," if i else "{") + f'"{key}":'))
        name = sub[0].node.name.value
        parts.append(json_lit(type_.name) if name == "__typename" else render(name, sub))
    parts.append("'}'" if parts else "'{}'")
    return concat(parts)
