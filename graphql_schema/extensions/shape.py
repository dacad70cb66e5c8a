"""Depth and alias limits as one validation rule that measures each fragment once (memoised).

Expanding spreads instead would let a few hundred bytes of fragments that each spread the
next one twice cost 2**n steps; here a document costs one step per selection it contains.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.language import SKIP

SATURATE = 1 << 62  # expanded alias counts stop growing here (a number, not a walk)


class _Measure:
    """(depth, aliases) of selection sets, each fragment measured once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, tuple[int, int]] = {}
        self.active: set[str] = set()

    def selections(self, selection_set: SelectionSetNode) -> tuple[int, int]:
        depth = aliases = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                if node.alias is not None:
                    aliases += 1
                if node.selection_set is not None and not node.name.value.startswith("__"):
                    below, more = self.selections(node.selection_set)
                    depth, aliases = max(depth, below + 1), aliases + more
            elif isinstance(node, InlineFragmentNode):
                below, more = self.selections(node.selection_set)
                depth, aliases = max(depth, below), aliases + more
            elif isinstance(node, FragmentSpreadNode):
                below, more = self.fragment(node.name.value)
                depth, aliases = max(depth, below), aliases + more
        return depth, min(aliases, SATURATE)

    def fragment(self, name: str) -> tuple[int, int]:
        if (known := self.memo.get(name)) is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:  # unknown or a cycle: other rules say so
            return 0, 0
        self.active.add(name)
        try:
            measured = self.selections(fragment.selection_set)
        finally:
            self.active.discard(name)
        self.memo[name] = measured
        return measured


def shape_rule(max_depth: int, max_aliases: int) -> type[ASTValidationRule]:
    """A validation rule class refusing operations deeper than `max_depth` levels of fields
    or with more than `max_aliases` aliases (counted through every spread)."""

    class OperationShapeRule(ASTValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> Any:
            fragments = {
                d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)
            }
            measure = _Measure(fragments)
            for operation in node.definitions:
                if isinstance(operation, OperationDefinitionNode):
                    self.check(operation, measure)
            return SKIP

        def check(self, operation: OperationDefinitionNode, measure: _Measure) -> None:
            name = operation.name.value if operation.name else "anonymous"
            try:
                depth, aliases = measure.selections(operation.selection_set)
            except RecursionError:  # nested past the interpreter's stack: deeper than any limit
                depth, aliases = max_depth + 1, 0
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {max_depth}",
                        operation,
                        extensions={"code": "QUERY_TOO_DEEP", "maxDepth": max_depth},
                    )
                )
            if aliases > max_aliases:
                self.report_error(
                    GraphQLError(
                        f"'{name}' has more than {max_aliases} aliases (counted through "
                        "fragment spreads)",
                        operation,
                        extensions={"code": "TOO_MANY_ALIASES", "maxAliases": max_aliases},
                    )
                )

    return OperationShapeRule
