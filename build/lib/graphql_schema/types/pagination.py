"""Relay page info and the argument parsing every connection field shares."""

from __future__ import annotations

import strawberry

from app.db.pagination import Page, PageArgs
from graphql_schema.types.context import Info


@strawberry.type(description="Relay pagination state of a connection.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[object]) -> PageInfo:
        return cls(has_next_page=page.has_next, end_cursor=page.end_cursor)


def page_args(info: Info, first: int | None, after: str | None) -> PageArgs:
    settings = info.context.settings
    return PageArgs.parse(first, after, settings.default_page_size, settings.max_page_size)


FIRST_DESCRIPTION = "Page size: 20 when omitted, at most 100 (BOOKBRIDGE_MAX_PAGE_SIZE)."
AFTER_DESCRIPTION = "An endCursor from a previous page."
