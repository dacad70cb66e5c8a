"""Variable coercion compiled per input type: graphql-core's result, a fraction of its time.

graphql-core coerces variables with one generic recursive function that re-inspects the type
at every value (`coerce_input_value`), after walking the whole value once more to refuse deep
nesting (`input_is_nested_too_deeply`). For an ingestion batch of 1,000 books that was half of
the request's Python time (pyinstrument, docs/performance.md). Here each input type is turned
once into a chain of small closures that do the same checks in the same order; the nesting
walk is not needed because a non-recursive input type bounds the depth of any value it
accepts.

Only the successful case is fast: whenever a value does not coerce, a variable is missing or
has a default, or a type is recursive or a oneOf input, the request goes through graphql-core's
own `get_variable_values`, so every error message and edge case stays graphql-core's.
`tests/graphql_schema/execution/test_variables.py` checks both give equal results.

The executor reaches this through the public `build` classmethod of our execution context
(`graphql_schema.execution.context`), not by replacing graphql-core's own function.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    is_leaf_type,
    is_required_input_field,
)
from graphql.execution import VariableValues
from graphql.execution import get_variable_values as generic_variable_values
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.execution.values import VariableValueSource
from graphql.language import VariableDefinitionNode
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.pyutils import is_iterable
from graphql.utilities.coerce_input_value import coerce_default_value

Coercer = Callable[[Any], Any]  # the coerced value, or Undefined when it does not coerce
_original = generic_variable_values  # graphql-core's own, for everything but success
# (wrappers, id of the named type) -> (named type, coercer): the wrappers (GraphQLNonNull,
# GraphQLList) are made anew for every request's variable definitions, the named types are
# the schema's own and live as long as it does
_compiled: dict[tuple[str, int], tuple[GraphQLNamedType, Coercer | None]] = {}


class _Unsupported(Exception):
    """A type this module leaves to graphql-core."""


def coercer(type_: GraphQLInputType) -> Coercer | None:
    """The compiled coercer of `type_` (None: graphql-core's generic path is used)."""
    wrappers, named = "", type_
    while isinstance(named, GraphQLNonNull | GraphQLList):
        wrappers += "!" if isinstance(named, GraphQLNonNull) else "["
        named = named.of_type
    key = (wrappers, id(named))
    hit = _compiled.get(key)
    if hit is not None and hit[0] is named:
        return hit[1]
    try:
        fn, depth = _compile(type_, ())
        found: Coercer | None = fn if depth <= MAX_NESTING_DEPTH else None
    except Exception:  # _Unsupported, or a type this module does not know: graphql-core's path
        found = None
    _compiled[key] = (named, found)
    return found


def _compile(  # noqa: PLR0915 - one small closure per kind of type
    type_: GraphQLInputType, enclosing: tuple[GraphQLInputObjectType, ...]
) -> tuple[Coercer, int]:
    """(coercer, the deepest nesting a value of this type can have)."""
    if isinstance(type_, GraphQLNonNull):
        inner, depth = _compile(type_.of_type, enclosing)

        def non_null(value: Any) -> Any:
            if value is None or value is Undefined:
                return Undefined
            return inner(value)

        return non_null, depth

    if isinstance(type_, GraphQLList):
        item, depth = _compile(type_.of_type, enclosing)

        def as_list(value: Any) -> Any:
            if value is None or value is Undefined:
                return None
            if type(value) is not list and not is_iterable(value):  # a value is a list of one
                one = item(value)
                return Undefined if one is Undefined else [one]
            out: list[Any] = []
            append = out.append
            for element in value:
                coerced = item(element)
                if coerced is Undefined:
                    return Undefined
                append(coerced)
            return out

        return as_list, depth + 1

    if isinstance(type_, GraphQLInputObjectType):
        if type_ in enclosing or type_.is_one_of:
            raise _Unsupported(type_.name)
        fields: list[tuple[str, str, Coercer, bool, Any]] = []
        deepest = 0
        for name, field in type_.fields.items():
            fn, depth = _compile(field.type, (*enclosing, type_))
            deepest = max(deepest, depth)
            required = is_required_input_field(field)
            try:
                default = Undefined if required else coerce_default_value(field)
            except Exception as exc:  # an invalid default: graphql-core reports it
                raise _Unsupported(type_.name) from exc
            fields.append((name, field.out_name or name, fn, required, default))
        names = frozenset(type_.fields)
        out_type = type_.out_type

        def input_object(value: Any) -> Any:
            if value is None or value is Undefined:
                return None
            if not isinstance(value, dict) or not names.issuperset(value):
                return Undefined  # unknown fields (or not an object): graphql-core explains
            coerced: dict[str, Any] = {}
            for name, out_name, fn, required, default in fields:
                field_value = value.get(name, Undefined)
                if field_value is Undefined:
                    if required:
                        return Undefined
                    if default is not Undefined:
                        coerced[out_name] = default
                    continue
                result = fn(field_value)
                if result is Undefined:
                    return Undefined
                coerced[out_name] = result
            return out_type(coerced)

        return input_object, deepest + 1

    if not is_leaf_type(type_):
        raise _Unsupported(str(type_))
    parse = type_.coerce_input_value

    def leaf(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        try:
            return parse(value)
        except Exception:  # invalid: graphql-core's path says why
            return Undefined

    if type_ is GraphQLString or type_ is GraphQLID:
        # both return a str value as it is (an ID also takes an integer): no call for that case

        def text(value: Any) -> Any:
            return value if type(value) is str else leaf(value)

        return text, 0
    return leaf, 0


def compiled_variable_values(
    schema: GraphQLSchema,
    var_def_nodes: Collection[VariableDefinitionNode],
    inputs: dict[str, Any],
) -> VariableValues | None:
    """What graphql-core's `get_variable_values` gives when every variable coerces; None
    whenever graphql-core's own path must decide (an error, a default, an unsupported type)."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for node in var_def_nodes:
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            return None
        name, value = signature.name, inputs.get(signature.name, Undefined)
        if value is Undefined:
            if node.default_value or isinstance(signature.type, GraphQLNonNull):
                return None  # defaults and missing required values: graphql-core's
            sources[name] = VariableValueSource(signature)
            continue
        fn = coercer(signature.type)
        if fn is None:
            return None
        result = fn(value)
        if result is Undefined:
            return None
        sources[name] = VariableValueSource(signature, value)
        coerced[name] = result
    return VariableValues(sources, coerced)


def get_variable_values(
    schema: GraphQLSchema,
    var_def_nodes: Collection[VariableDefinitionNode],
    inputs: dict[str, Any],
    max_errors: int | None = None,
    hide_suggestions: bool = False,
) -> Any:
    """`graphql.execution.get_variable_values`, compiled for the successful case."""
    found = compiled_variable_values(schema, var_def_nodes, inputs)
    if found is None:
        return _original(schema, var_def_nodes, inputs, max_errors, hide_suggestions)
    return found
