"""SQL expressions that render values as JSON text byte-identical to the normal path's.

The normal path serialises with orjson: compact separators, `1.0` for integral floats,
`0.00001` but `1e-7`, `1e+16`; Strawberry writes a DateTime with `isoformat()` (UTC from
asyncpg: `+00:00`, microseconds only when non-zero); cursors are `encode_cursor`'s URL-safe
base64 of the orjson array without padding. PostgreSQL's `json_build_object` would add spaces
after colons and commas, so objects are concatenated text instead. A float this module cannot
render identically (non-finite, which the normal path reports as a field error, or >= 1e15)
makes the statement fail (division by zero), and the request falls back to normal execution.
"""

from __future__ import annotations

import orjson

from graphql_schema.execution.compiler.mapping import Kind


def lit(value: str) -> str:
    """A SQL string literal of our own text (keys, type names): quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def json_lit(value: object) -> str:
    """A SQL literal holding `value` as JSON text."""
    return lit(orjson.dumps(value).decode())


def concat(parts: list[str]) -> str:
    """`a || b || ...`, adjacent string literals merged into one."""
    merged: list[str] = []
    pending = ""
    for part in parts:
        if part.startswith("'") and part.endswith("'") and "'" not in part[1:-1].replace("''", ""):
            pending += part[1:-1].replace("''", "'")
            continue
        if pending:
            merged.append(lit(pending))
            pending = ""
        merged.append(part)
    if pending:
        merged.append(lit(pending))
    return " || ".join(merged) if merged else "''"


# orjson's float text from PostgreSQL's shortest round-trip text (same digits): PostgreSQL
# writes plain decimals for 1e-4 <= |x| < 1e15, orjson for 1e-5 <= |x| < 1e16 (with `.0` when
# integral); below, both write `d[.ddd]e-x`, PostgreSQL padding the exponent to 2 digits. From
# 1e15 up PostgreSQL writes every digit of an integral value (not the shortest), so such a value
# (and a non-finite one) makes the statement fail: the request falls back (division by zero).
_FLOAT = """(CASE WHEN {x} IS NULL THEN 'null'
 WHEN {x} = 0 THEN CASE WHEN {x}::text LIKE '-%' THEN '-0.0' ELSE '0.0' END
 WHEN abs({x}) >= 1e-4 AND abs({x}) < 1e15
  THEN CASE WHEN {x} = trunc({x}) THEN {x}::text || '.0' ELSE {x}::text END
 WHEN abs({x}) < 1e-4 THEN (SELECT CASE
  WHEN f.e >= -5 THEN f.s || '0.' || repeat('0', -f.e - 1) || f.d
  ELSE f.s || f.m || 'e-' || abs(f.e)::text END
  FROM (SELECT r[1] AS s, r[2] || coalesce('.' || r[3], '') AS m,
        r[2] || coalesce(r[3], '') AS d, r[4]::int AS e
        FROM regexp_match({x}::text, '^(-?)([0-9])(?:[.]([0-9]+))?e([-+][0-9]+)$') AS r) AS f)
 ELSE (1 / (length({x}::text) - length({x}::text)))::text END)"""


def float_json(expr: str) -> str:
    return _FLOAT.format(x=expr)


def datetime_json(expr: str) -> str:
    utc = f"({expr} AT TIME ZONE 'UTC')"
    seconds = 'YYYY-MM-DD"T"HH24:MI:SS'
    return (
        f"""CASE WHEN {expr} IS NULL THEN 'null' ELSE '"' || CASE WHEN date_trunc('second', """
        f"""{expr}) = {expr} THEN to_char({utc}, '{seconds}') ELSE to_char({utc}, '{seconds}.US')"""
        f""" END || '+00:00"' END"""
    )


def value_json(expr: str, kind: Kind, nullable: bool) -> str:
    if kind == "float":
        return float_json(expr)
    if kind == "datetime":
        return datetime_json(expr)
    text = f"array_to_json({expr})::text" if kind == "text[]" else f"to_json({expr})::text"
    return f"coalesce({text}, 'null')" if nullable else text


def cursor(values_json: list[str]) -> str:
    """`encode_cursor` in SQL: URL-safe base64 of the JSON array, unpadded, one line."""
    array = concat(["'['", *_commas(values_json), "']'"])
    return (
        f"rtrim(translate(encode(convert_to({array}, 'UTF8'), 'base64'), '+/' || chr(10), '-_'),"
        " '=')"
    )


def _commas(parts: list[str]) -> list[str]:
    out: list[str] = []
    for i, part in enumerate(parts):
        if i:
            out.append("','")
        out.append(part)
    return out
