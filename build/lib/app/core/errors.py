"""Domain errors that reach clients with their message intact (never masked)."""

from __future__ import annotations


class ClientError(Exception):
    """An error caused by the request; its message is safe to show and says what to fix."""

    code = "BAD_REQUEST"


class InvalidArgument(ClientError):
    code = "BAD_USER_INPUT"

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"Argument '{argument}' {reason}")
        self.argument = argument


class NotImplementedYet(ClientError):
    code = "NOT_IMPLEMENTED"

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} is not implemented yet")


class NotFound(ClientError):
    """Nothing the caller may see has this id (unknown and forbidden look the same)."""

    code = "NOT_FOUND"
