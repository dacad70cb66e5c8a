"""Look-ahead into a field's selection, so a list resolver can load its children's data first."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from graphql_schema.types.context import Info


def _fields(selections: Sequence[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def under(selections: Sequence[Selection], *path: str) -> list[SelectedField]:
    """The fields reached by following `path` (GraphQL names) down, through aliases and fragments."""
    level: list[SelectedField] = list(_fields(selections))
    matched: list[SelectedField] = []
    for name in path:
        matched = [f for f in level if f.name == name]
        level = children(matched)
    return matched


def inside(selections: Sequence[Selection], *path: str) -> list[SelectedField]:
    """What is selected under the end of `path`."""
    return children(under(selections, *path))


def children(fields: Sequence[SelectedField]) -> list[SelectedField]:
    """The sub-selections of `fields`, merged."""
    return [child for f in fields for child in _fields(f.selections)]


def selection(info: Info) -> list[SelectedField]:
    """What the client asked for under the field being resolved."""
    return list(_fields([c for f in info.selected_fields for c in f.selections]))
