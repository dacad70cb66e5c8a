"""A hypothesis strategy of catalog read operations: random selections, aliases, fragments,
`@skip`/`@include`, variables, `first`/`after`/filters/search, unknown ids and bad arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from app.db.pagination import encode_cursor

Fields = dict[str, str | None]  # field -> object type (None: a leaf)
TYPES: dict[str, Fields] = {
    "Book": {
        "id": None,
        "title": None,
        "description": None,
        "tags": None,
        "updatedAt": None,
        "publisher": "Publisher",
        "topics": "BookTopic",
    },
    "BookTopic": {"weight": None, "topic": "Topic"},
    "Topic": {
        "id": None,
        "label": None,
        "subject": "Subject",
        "grade": "Grade",
        "category": "Category",
        "books": "TopicBookConnection",
    },
    "Publisher": {"id": None, "name": None, "books": "BookConnection"},
    "Subject": {"id": None, "name": None},
    "Grade": {"id": None, "name": None},
    "Category": {
        "id": None,
        "name": None,
        "subject": "Subject",
        "parent": "Category",
        "children": "Category",
    },
    "BookConnection": {"edges": "BookEdge", "pageInfo": "PageInfo"},
    "TopicBookConnection": {"edges": "TopicBookEdge", "pageInfo": "PageInfo"},
    "PublisherConnection": {"edges": "PublisherEdge", "pageInfo": "PageInfo"},
    "TopicConnection": {"edges": "TopicEdge", "pageInfo": "PageInfo"},
    "BookEdge": {"cursor": None, "node": "Book"},
    "TopicBookEdge": {"cursor": None, "node": "Book", "weight": None},
    "PublisherEdge": {"cursor": None, "node": "Publisher"},
    "TopicEdge": {"cursor": None, "node": "Topic"},
    "PageInfo": {"hasNextPage": None, "endCursor": None},
}
ROOTS: Fields = {
    "book": "Book",
    "books": "BookConnection",
    "publisher": "Publisher",
    "publishers": "PublisherConnection",
    "topic": "Topic",
    "topics": "TopicConnection",
    "subjects": "Subject",
    "grades": "Grade",
    "categories": "Category",
}
IDS = {
    "book": ["b001", "b017", "b039", "nope", ""],
    "publisher": ["p0", "p3", "p4", "nope"],
    "topic": ["t0", "t1", "t4", "t5", "nope"],
}
FILTER_IDS = {
    "publisherId": ["p1", "p4", "x"],
    "topicId": ["t0", "t2", "t5", "x"],
    "subjectId": ["s1", "s2", "x"],
    "gradeId": ["g1", "g2"],
    "categoryId": ["c1", "c1a", "c1b", "c2"],
}
SEARCHES = ["garden", "wizard school", "magic -ocean", '"magic garden"', "rocket or ocean", "  "]
SEARCHES += ["'\\\" & | ! ( :*", "é", "zzz"]
TOPIC_SEARCHES = ["topic", "%", "_", "\\", "GARDEN", " ", "100% s"]
ALIASES = ["a", "b", "x1"]


def _cursor(draw: st.DrawFn, kinds: tuple[type, ...]) -> str:
    values: list[Any] = []
    for kind in kinds:
        if kind is float:
            values.append(draw(st.sampled_from([0.0, 0.1, 0.5, 1.0, 1e-05, 0.0607927])))
        else:
            values.append(draw(st.sampled_from(["b010", "b0", "p1", "t2", "", "zz"])))
    return encode_cursor(values)


@dataclass
class Op:
    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    fragments: dict[str, str] = field(default_factory=dict)

    def var(self, name: str, kind: str, value: Any) -> str:
        name = f"v{len(self.variables)}_{name}"
        self.definitions.append(f"${name}: {kind}")
        self.variables[name] = value
        return f"${name}"


def _gql(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_gql(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _arg(draw: st.DrawFn, op: Op, name: str, kind: str, value: Any) -> str:
    if draw(st.booleans()):
        return f"{name}: {op.var(name, kind, value)}"
    return f"{name}: {_gql(value)}"


def _page_args(draw: st.DrawFn, op: Op, type_name: str, root: bool) -> list[str]:
    args: list[str] = []
    if draw(st.integers(0, 3)):
        if not draw(st.integers(0, 9)):  # out of range: an argument error
            first = draw(st.sampled_from([101, -1]))
        else:
            first = draw(st.sampled_from([0, 1, 2, 5, 20, 100] if root else [0, 1, 2, 3]))
        args.append(_arg(draw, op, "first", "Int", first))
    search = False
    if root and type_name in ("BookConnection", "TopicConnection") and draw(st.booleans()):
        flt: dict[str, Any] = {}
        names = list(FILTER_IDS) if type_name == "BookConnection" else list(FILTER_IDS)[2:]
        for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
            flt[name] = draw(st.sampled_from(FILTER_IDS[name]))
        if draw(st.booleans()):
            pool = SEARCHES if type_name == "BookConnection" else TOPIC_SEARCHES
            flt["search"] = draw(st.sampled_from(pool))
            search = type_name == "BookConnection" and bool(flt["search"].strip())
        kind = "BookFilter" if type_name == "BookConnection" else "TopicFilter"
        args.append(_arg(draw, op, "filter", kind, flt))
    if not draw(st.integers(0, 3)):
        kinds: tuple[type, ...] = (
            (float, str) if search or type_name == "TopicBookConnection" else (str,)
        )
        if draw(st.integers(0, 9)):
            after = _cursor(draw, kinds)
        else:
            after = draw(st.sampled_from(["not-a-cursor!", "WzEsMl0", "e30", encode_cursor([1])]))
        args.append(_arg(draw, op, "after", "String", after))
    return args


@st.composite
def selection(draw: st.DrawFn, op: Op, type_name: str, depth: int) -> str:
    fields = TYPES[type_name]
    leaves = [f for f, t in fields.items() if t is None]
    objects = [f for f, t in fields.items() if t is not None]
    chosen = draw(st.lists(st.sampled_from([*leaves, "__typename"]), min_size=1, max_size=3))
    if depth > 0 and objects:
        chosen += draw(st.lists(st.sampled_from(objects), max_size=2))
    parts: list[str] = []
    for name in chosen:
        target = fields.get(name)
        text = name
        if draw(st.integers(0, 4)) == 0:
            text = f"{draw(st.sampled_from(ALIASES))}_{name}: {name}"
        if target is not None:
            args = ""
            if target.endswith("Connection"):
                page = _page_args(draw, op, target, root=False)
                args = f"({', '.join(page)})" if page else ""
            text += f"{args} {{ {draw(selection(op, target, depth - 1))} }}"
        directive = draw(st.integers(0, 7))
        if directive == 0:
            text += f" @include(if: {op.var('inc', 'Boolean!', draw(st.booleans()))})"
        elif directive == 1:
            text += f" @skip(if: {_gql(draw(st.booleans()))})"
        parts.append(text)
    wrap = draw(st.integers(0, 6))
    if wrap == 0:
        return f"... on {type_name} {{ {' '.join(parts)} }} {parts[0]}"
    if wrap == 1:
        name = f"F{len(op.fragments)}"
        op.fragments[name] = f"fragment {name} on {type_name} {{ {' '.join(parts)} }}"
        return f"...{name} {parts[-1]}"
    return " ".join(parts)


@st.composite
def operations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    op = Op()
    roots: list[str] = []
    for i, name in enumerate(draw(st.lists(st.sampled_from(list(ROOTS)), min_size=1, max_size=3))):
        target = ROOTS[name]
        args: list[str] = []
        if name in IDS:
            args.append(_arg(draw, op, "id", "ID!", draw(st.sampled_from(IDS[name]))))
        elif target.endswith("Connection"):
            args = _page_args(draw, op, target, root=True)
        alias = f"r{i}: " if draw(st.booleans()) else ""
        call = f"({', '.join(args)})" if args else ""
        roots.append(f"{alias}{name}{call} {{ {draw(selection(op, target, 3))} }}")
    header = f"query Q({', '.join(op.definitions)})" if op.definitions else "query Q"
    document = f"{header} {{ {' '.join(roots)} }} {' '.join(op.fragments.values())}"
    return document, op.variables
