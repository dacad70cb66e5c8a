"""What the compiler's modules share: its two refusals, argument sites, and the builder's face."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from graphql import FieldNode, GraphQLField, GraphQLObjectType

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
