"""Parsed and validated documents, kept in a cache bounded by entries and by characters.

Each document is refused by its length, then its token count, before anything else is spent
on it; what passed is parsed once per process (the response cache and the schema share the
entry) and validated once per schema (the validation errors live in the entry too).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from strawberry.extensions import SchemaExtension

MAX_COSTS_PER_DOCUMENT = 16  # cost results kept per document (by operation and `first` values)


@dataclass(slots=True)
class Document:
    """One document text: its AST (or why it has none) and what was decided about it."""

    query: str
    node: DocumentNode | None
    error: GraphQLError | None = None
    validation: list[GraphQLError] | None = None
    public: dict[str | None, bool] = field(default_factory=dict)  # by operation name
    costs: dict[object, int] = field(default_factory=dict)
    # the compiled read path's fast lane: what it worked out per requested operation name
    # (graphql_schema/execution/compiler/fast.py), kept with the document it was worked out of
    lanes: dict[str | None, object] = field(default_factory=dict)

    def remember_cost(self, key: object, cost: int) -> None:
        if len(self.costs) >= MAX_COSTS_PER_DOCUMENT:
            self.costs.pop(next(iter(self.costs)))
        self.costs[key] = cost


def too_large(max_chars: int) -> GraphQLError:
    return GraphQLError(
        f"Document is longer than {max_chars} characters",
        extensions={"code": "DOCUMENT_TOO_LARGE", "maxChars": max_chars},
    )


class DocumentCache:
    """LRU of `Document`s, at most `entries` of them and `max_chars` characters of text."""

    def __init__(
        self, *, max_document_chars: int, max_tokens: int, entries: int, max_chars: int
    ) -> None:
        self.max_document_chars = max_document_chars
        self.max_tokens = max_tokens
        self.entries = entries
        self.max_chars = max_chars
        self.chars = 0
        self._documents: OrderedDict[str, Document] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def cached(self, query: str) -> Document | None:
        """The document of `query` if it is kept (nothing parsed otherwise)."""
        found = self._documents.get(query)
        if found is not None:
            self._documents.move_to_end(query)
        return found

    def get(self, query: str) -> Document:
        """The document of `query`: parsed within the limits, or carrying the refusal."""
        found = self._documents.get(query)
        if found is not None:
            self._documents.move_to_end(query)
            return found
        if len(query) > self.max_document_chars:
            return Document(query, None, too_large(self.max_document_chars))  # never kept
        try:
            document = Document(
                query,
                parse(
                    query,
                    max_lexical_tokens=self.max_tokens,
                    max_comments=self.max_tokens,
                    max_source_length=self.max_document_chars,
                ),
            )
        except GraphQLError as exc:
            if "tokens" in exc.message or "comments" in exc.message:
                exc.extensions = {"code": "TOO_MANY_TOKENS", "maxTokens": self.max_tokens}
            exc.__traceback__ = None  # the parser's frames (all its tokens) are not kept
            document = Document(query, None, exc)
        self._keep(document)
        return document

    def _keep(self, document: Document) -> None:
        size = len(document.query)
        if self.entries == 0 or size > self.max_chars // 8:
            return  # one large document must not evict the others
        self._documents[document.query] = document
        self.chars += size
        while len(self._documents) > self.entries or self.chars > self.max_chars:
            _, old = self._documents.popitem(last=False)
            self.chars -= len(old.query)
            _unlink_tokens(old)


def _unlink_tokens(document: Document) -> None:
    """Break the doubly linked token list of an evicted document, so reference counting frees
    it at once: left to the cycle collector, the tokens of long-cached documents wait for a
    full collection, and a flood of distinct documents piles them up (nothing reads the
    links after parsing; locations keep their offsets)."""
    location = document.node.loc if document.node is not None else None
    token = location.start_token if location is not None else None
    while token is not None:
        following = token.next
        token.prev = token.next = None
        token = following


# What a refused document runs as until validation reports its refusal: raising it from the
# parse hook instead would leave the request's objects (the whole text) in a reference cycle
# through the traceback, freed only by a full collection.
PLACEHOLDER = parse("{ __typename }", no_location=True)


def placeholder(operation_name: str | None) -> DocumentNode:
    """PLACEHOLDER, with the operation named as the request names it (so that choosing the
    operation succeeds and the refusal is what the client hears)."""
    if operation_name is None:
        return PLACEHOLDER
    (operation,) = PLACEHOLDER.definitions
    assert isinstance(operation, OperationDefinitionNode)
    named = OperationDefinitionNode(
        operation=OperationType.QUERY,
        name=NameNode(value=operation_name),
        directives=(),
        variable_definitions=(),
        selection_set=operation.selection_set,
    )
    return DocumentNode(definitions=(named,))


class CachedDocuments(SchemaExtension):
    """Parse through the cache (refusing over-long or over-token documents first), and keep
    the validation errors of each document, so that neither is done twice."""

    def __init__(self, cache: DocumentCache, rules: Sequence[type[ASTValidationRule]] = ()) -> None:
        self.cache = cache
        self.rules = tuple(rules)  # added to Strawberry's validation rules, in order
        self.document: Document | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            self.document = document = self.cache.get(context.query)
            context.graphql_document = document.node or placeholder(context.operation_name)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.rules:
            context.validation_rules = (*context.validation_rules, *self.rules)
        document = self.document
        if document is not None and document.error is not None:
            error = document.error  # a fresh error each time: clients' errors are not shared
            context.pre_execution_errors = [
                GraphQLError(
                    error.message,
                    source=error.source,
                    positions=error.positions,
                    extensions=error.extensions,
                )
            ]
        elif document is not None and document.validation is not None:
            context.pre_execution_errors = list(document.validation)
        yield
        if document is not None and document.error is None and document.validation is None:
            document.validation = list(context.pre_execution_errors or [])
