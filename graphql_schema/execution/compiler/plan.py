"""Compile one GraphQL read operation into one SQL statement that builds the response JSON.

Fields are collected with graphql-core's own `collect_fields` (fragments, `@skip`/`@include`,
response-key merging), so the statement's keys come in the order normal execution writes them.
Each root field becomes one column of one row: the JSON text of its value. Arguments become
bind parameters through `Site`s, re-evaluated for every request that reuses the plan; a plan is
only valid for the variables' *shape* it was compiled for (`shape`), which the cache keys on.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values

from app.core.settings import RecoSettings
from app.core.viewer import Viewer
from app.db.study import visible_owner
from graphql_schema.execution.compiler.base import (
    Fallback,
    Site,
    Unsupported,
    Values,
    fields_object,
)
from graphql_schema.execution.compiler.connection import connection_sql
from graphql_schema.execution.compiler.jsonsql import json_lit, value_json
from graphql_schema.execution.compiler.mapping import (
    All,
    Children,
    Column,
    Connection,
    Linked,
    Lookup,
    Order,
    Ref,
    StoredList,
    Table,
)
from graphql_schema.execution.compiler.recommendations import stored_list_sql


@dataclass(frozen=True, slots=True)
class Plan:
    sql: str
    keys: tuple[str, ...]
    sites: tuple[Site, ...]
    viewer_slots: tuple[int, ...] = ()  # parameters that are the viewer's own user id

    def parameters(self, variables: VariableValues) -> list[Any]:
        """The arguments' parameters; the viewer's (`viewer_slots`) are None until `for_viewer`."""
        out: list[Any] = []
        for site in self.sites:
            if site.viewer:
                out.append(None)
                continue
            try:
                args = get_argument_values(site.field, site.node, variables)
            except Exception as exc:
                raise Fallback(str(exc)) from None
            shape, values = site.values(args)
            if shape != site.shape:
                raise Fallback("the arguments' shape differs from the compiled plan's")
            out += values
        return out

    def for_viewer(self, params: list[Any], viewer: Viewer) -> list[Any]:
        """`params` with the viewer's scope set: a student's own user id (`visible_owner`); any
        other viewer (an admin, a publisher, anonymous) is normal execution's (Fallback)."""
        if not self.viewer_slots:
            return params
        owner = visible_owner(viewer)
        if not isinstance(owner, str):
            raise Fallback("not a student's own rows")
        out = list(params)
        for i in self.viewer_slots:
            out[i] = owner
        return out


def shape(value: Any) -> Hashable:
    """What of a variable's value can change the statement: nulls, booleans, blank strings."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        return tuple((k, shape(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(shape(v) for v in value)
    return 1


class Compiler:
    """One compilation: walks the operation, numbers the bind parameters, names the aliases."""

    def __init__(
        self,
        schema: GraphQLSchema,
        mapping: dict[str, Table],
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        pages: tuple[int, int],
        reco: RecoSettings | None = None,
    ) -> None:
        self.schema = schema
        self.reco = reco  # None: no stored recommendation lists (StoredList unsupported)
        self.mapping = mapping
        self.operation = operation
        self.variables = variables
        self.pages = pages  # (default, maximum) page size
        self.fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.count = 0
        self.aliases = 0
        self.sites: list[Site] = []
        self.viewer_slots: list[int] = []
        self.nulls = 0

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    def site(self, field: GraphQLField, node: FieldNode, values: Values) -> list[str]:
        """Register an argument site; the placeholders of its parameters, in order."""
        args = get_argument_values(field, node, self.variables)
        found, params = values(args)
        self.sites.append(Site(field, node, values, found))
        first = self.count + 1
        self.count += len(params)
        return [f"${i}" for i in range(first, self.count + 1)]

    def scope(self, field: GraphQLField, node: FieldNode) -> str:
        """The placeholder of the viewer's own user id (set per request: Plan.for_viewer)."""
        self.sites.append(Site(field, node, _no_values, (), viewer=True))
        self.viewer_slots.append(self.count)
        self.count += 1
        return f"${self.count}"

    def compile(self) -> Plan:
        root = self.schema.query_type
        assert root is not None
        collected = collect_fields(
            self.schema, self.fragments, self.variables, root, self.operation
        )
        self._check(collected)
        keys: list[str] = []
        columns: list[str] = []
        table = self.mapping["Query"]
        for key, details in collected.grouped_field_set.items():
            name = details[0].node.name.value
            if name == "__typename":
                columns.append(json_lit("Query"))
            else:
                field = root.fields.get(name)
                spec = table.fields.get(name)
                if field is None or spec is None:
                    raise Unsupported(name)
                columns.append(self.root(spec, field, details))
            keys.append(key)
        if not keys:
            raise Unsupported("nothing selected")
        select = ", ".join(f"{c} AS c{i}" for i, c in enumerate(columns))
        sql = f"SELECT {select}"
        return Plan(sql, tuple(keys), tuple(self.sites), tuple(self.viewer_slots))

    def _check(self, collected: Any) -> None:
        """Every collected field plain: no @defer, no fragment arguments."""
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise Unsupported("@defer")
        for details in collected.grouped_field_set.values():
            for d in details:
                if d.defer_usage is not None or d.fragment_variable_values is not None:
                    raise Unsupported("fragment arguments or @defer")

    def subfields(self, type_: GraphQLObjectType, details: list[FieldDetails]) -> Any:
        collected = collect_subfields(
            self.schema, self.fragments, self.variables, self.operation, type_, details
        )
        self._check(collected)
        return collected.grouped_field_set

    # --- roots -------------------------------------------------------------------------
    def root(self, spec: object, field: GraphQLField, details: list[FieldDetails]) -> str:
        node = details[0].node
        if isinstance(spec, Lookup):
            (param,) = self.site(field, node, _lookup_id)
            alias = self.alias()
            table = self.table(spec.target)
            obj = self.object(spec.target, alias, details)
            return f"coalesce((SELECT {obj} FROM {table.table} {alias} WHERE {alias}.id = {param}), 'null')"
        if isinstance(spec, All):
            alias = self.alias()
            obj = self.object(spec.target, alias, details)
            return self.array(obj, self.table(spec.target).table, alias, spec.order, None)
        if isinstance(spec, Connection):
            return connection_sql(self, spec, field, details, None)
        raise Unsupported(node.name.value)

    # --- objects -------------------------------------------------------------------------
    def table(self, type_name: str) -> Table:
        table = self.mapping.get(type_name)
        if table is None:
            raise Unsupported(type_name)
        return table

    def object(self, type_name: str, alias: str, details: list[FieldDetails]) -> str:
        """The JSON object text of the row `alias` of `type_name`, with the selection `details`."""
        gql = self.schema.get_type(type_name)
        if not isinstance(gql, GraphQLObjectType):
            raise Unsupported(type_name)
        table = self.table(type_name)
        return fields_object(self, gql, details, lambda _, sub: self.value(gql, table, alias, sub))

    def value(
        self, gql: GraphQLObjectType, table: Table, alias: str, details: list[FieldDetails]
    ) -> str:
        name = details[0].node.name.value
        if name == "__typename":
            return json_lit(gql.name)
        spec = table.fields.get(name)
        field = gql.fields.get(name)
        if spec is None or field is None:
            raise Unsupported(f"{gql.name}.{name}")
        if isinstance(spec, Column):
            return value_json(f"{alias}.{spec.column}", spec.kind, spec.nullable)
        if isinstance(spec, Ref):
            inner = self.alias()
            obj = self.object(spec.target, inner, details)
            target = self.table(spec.target).table
            sql = f"(SELECT {obj} FROM {target} {inner} WHERE {inner}.id = {alias}.{spec.column})"
            return f"coalesce({sql}, 'null')" if _nullable(field) else sql
        if isinstance(spec, Children):
            inner = self.alias()
            obj = self.object(spec.target, inner, details)
            where = f"{inner}.{spec.key} = {alias}.id"
            return self.array(obj, self.table(spec.target).table, inner, spec.order, where)
        if isinstance(spec, Linked):
            inner, link = self.alias(), self.alias()
            obj = self.object(spec.target, inner, details)
            target = self.table(spec.target).table
            return (
                f"(SELECT '[' || coalesce(string_agg({obj}, ',' ORDER BY"
                f" {order_by(inner, spec.order)}), '') || ']' FROM {spec.table} {link}"
                f" JOIN {target} {inner} ON {inner}.id = {link}.{spec.link}"
                f" WHERE {link}.{spec.key} = {alias}.id)"
            )
        if isinstance(spec, StoredList):
            if self.reco is None:
                raise Unsupported(f"{gql.name}.{name}")
            self.nulls += 1
            return stored_list_sql(self, self.reco, field, details, alias)
        if isinstance(spec, Connection):
            return connection_sql(self, spec, field, details, alias)
        raise Unsupported(f"{gql.name}.{name}")

    def array(
        self, obj: str, table: str, alias: str, order: tuple[Order, ...], where: str | None
    ) -> str:
        by = order_by(alias, order)
        cond = f" WHERE {where}" if where else ""
        return (
            f"(SELECT '[' || coalesce(string_agg({obj}, ',' ORDER BY {by}), '') || ']'"
            f" FROM {table} {alias}{cond})"
        )


def order_by(alias: str, order: tuple[Order, ...]) -> str:
    return ", ".join(f"{alias}.{o.column}{' DESC' if o.descending else ''}" for o in order)


def _nullable(field: GraphQLField) -> bool:
    return not isinstance(field.type, GraphQLNonNull)


def _no_values(args: dict[str, Any]) -> tuple[Hashable, list[Any]]:
    return (), []


def _lookup_id(args: dict[str, Any]) -> tuple[Hashable, list[Any]]:
    return (), [str(args["id"])]
