"""The row type the data-access functions return (SQLAlchemy 2.1 rows are variadic generics)."""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Row, Select

AnySelect: TypeAlias = Select[*tuple[Any, ...]]
Record: TypeAlias = Row[*tuple[Any, ...]]
