"""Security settings (BOOKBRIDGE_*): tokens, GraphQL limits, trusted documents, rate limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ASYMMETRIC_PREFIXES = ("RS", "PS", "ES", "Ed")


class SecuritySettings(BaseSettings):
    """Unset switches (None) follow BOOKBRIDGE_ENV: on in development, off in production."""

    model_config = SettingsConfigDict(env_prefix="BOOKBRIDGE_", extra="ignore")

    jwt_secret: str | None = Field(default=None, description="HS* signing secret (32+ bytes)")
    jwt_public_key: str | None = Field(default=None, description="PEM key for RS*/ES*/EdDSA")
    jwt_algorithms: str = Field(default="HS256", description="comma-separated, pinned")
    jwt_audience: str = "bookbridge"
    jwt_issuer: str = "bookbridge-auth"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_max_lifetime_seconds: int = Field(default=24 * 3600, gt=0, description="exp - iat cap")
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="live API keys are remembered this long per process (0: a query per request); "
        "a key revoked elsewhere still works here for up to this long",
    )

    introspection: bool | None = None
    graphiql: bool | None = None
    field_suggestions: bool | None = None
    mask_errors: bool | None = None

    max_depth: int = Field(default=12, gt=0)
    max_aliases: int = Field(default=30, gt=0)
    max_tokens: int = Field(default=2000, gt=0)
    max_cost: int = Field(default=20_000, gt=0, description="estimated objects a query may touch")
    list_cost_estimate: int = Field(default=10, gt=0, description="size assumed for plain lists")

    trusted_documents: Literal["off", "allow", "enforce"] = Field(
        default="allow",
        description="allow: hashes or text; enforce: registered documents only; off: text only",
    )

    rate_limit_cost_per_minute: int = Field(default=200_000, ge=0, description="0 turns it off")
    rate_limit_anonymous_cost_per_minute: int = Field(default=20_000, ge=0)

    @field_validator("jwt_algorithms")
    @classmethod
    def _pinned(cls, value: str) -> str:
        algorithms = [a.strip() for a in value.split(",") if a.strip()]
        if not algorithms or any(a.lower() == "none" for a in algorithms):
            raise ValueError("BOOKBRIDGE_JWT_ALGORITHMS must name real algorithms, never 'none'")
        kinds = {a.startswith(ASYMMETRIC_PREFIXES) for a in algorithms}
        if len(kinds) > 1:
            raise ValueError("do not mix HMAC and public-key JWT algorithms (key confusion)")
        return ",".join(algorithms)

    @property
    def algorithms(self) -> list[str]:
        return self.jwt_algorithms.split(",")

    def switch(
        self, name: Literal["introspection", "graphiql", "field_suggestions"], *, production: bool
    ) -> bool:
        value: bool | None = getattr(self, name)
        return (not production) if value is None else value

    def masking(self, *, production: bool) -> bool:
        return production if self.mask_errors is None else self.mask_errors
