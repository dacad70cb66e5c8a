"""An HTTP-level refusal (bad token, untrusted document, rate limit) with a GraphQL error code."""

from __future__ import annotations

from collections.abc import Mapping

from cross_web import HTTPException

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


class Refusal(HTTPException):
    def __init__(
        self,
        status_code: int,
        reason: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code or CODES.get(status_code, "BAD_REQUEST")
        self.headers = dict(headers or {})


def error_body(message: str, code: str, **extensions: object) -> dict[str, object]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
