"""Query cost: each field costs 1, times `first` (or an estimate for plain lists) at each level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    *,
    default_first: int,
    list_estimate: int,
) -> int:
    """An upper bound of the objects the operation may resolve (fragments counted in full, each
    measured once per parent type and paging: memoised, so spreads never multiply the work)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name and o.name.value == operation_name)
    ]
    if not chosen:
        return 0
    operation = chosen[0]
    root = schema.get_root_type(operation.operation)
    walker = _Walker(fragments, variables or {}, operation, default_first, list_estimate)
    return walker.cost(operation.selection_set, root, paged=False)


class _Walker:
    def __init__(
        self,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        operation: OperationDefinitionNode,
        default_first: int,
        list_estimate: int,
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.defaults = {
            v.variable.name.value: v.default_value for v in operation.variable_definitions or ()
        }
        self.default_first = default_first
        self.list_estimate = list_estimate
        self.memo: dict[tuple[str, str | None, bool], int] = {}
        self.active: set[str] = set()

    def cost(
        self,
        selections: SelectionSetNode,
        parent: GraphQLNamedType | None,
        *,
        paged: bool,
    ) -> int:
        total = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                total += self.field_cost(node, parent, paged=paged)
            elif isinstance(node, InlineFragmentNode):
                total += self.cost(node.selection_set, parent, paged=paged)
            elif isinstance(node, FragmentSpreadNode):
                total += self.fragment_cost(node.name.value, parent, paged=paged)
        return total

    def fragment_cost(self, name: str, parent: GraphQLNamedType | None, *, paged: bool) -> int:
        key = (name, None if parent is None else parent.name, paged)
        if (known := self.memo.get(key)) is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:  # validation refuses cycles before this
            return 0
        self.active.add(name)
        try:
            cost = self.cost(fragment.selection_set, parent, paged=paged)
        finally:
            self.active.discard(name)
        self.memo[key] = cost
        return cost

    def field_cost(self, node: FieldNode, parent: GraphQLNamedType | None, *, paged: bool) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 1
        definition = parent.fields.get(name)
        if definition is None:
            return 1
        if node.selection_set is None:
            return 1
        child_type = get_named_type(definition.type)
        multiplier, child_paged = 1, False
        if "first" in definition.args:
            multiplier, child_paged = self.first(node, definition.args["first"].default_value), True
        elif isinstance(get_nullable_type(definition.type), GraphQLList) and not paged:
            multiplier = self.list_estimate
        children = self.cost(node.selection_set, child_type, paged=child_paged)
        return 1 + max(multiplier, 1) * children

    def first(self, node: FieldNode, default: object) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return _int(value.value, self.default_first)
            if isinstance(value, VariableNode):
                name = value.name.value
                if name in self.variables:
                    return _int(self.variables[name], self.default_first)
                fallback = self.defaults.get(name)
                if isinstance(fallback, IntValueNode):
                    return _int(fallback.value, self.default_first)
            return self.default_first
        return _int(default, self.default_first)


def _int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str):
        try:
            return max(int(value), 0)
        except ValueError:
            return default
    return default
