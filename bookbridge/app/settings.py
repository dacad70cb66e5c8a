"""Settings read from the environment (pydantic-settings); never read at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bookbridge.app.auth.config import SecuritySettings
from bookbridge.app.observability.config import ObservabilitySettings
from bookbridge.app.reco.config import RecoSettings
from bookbridge.app.response_cache import ResponseCacheSettings


class Settings(BaseSettings):
    """Every knob of the service; each field maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    bookbridge_env: Literal["development", "production", "test"] = "development"
    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://... ; unset starts the embedded PostgreSQL",
    )
    redis_url: str | None = Field(default=None, description="redis://... ; unset caches in-process")
    data_dir: Path = Field(
        default=Path(".bookbridge"),
        validation_alias="BOOKBRIDGE_DATA_DIR",
        description="where the embedded PostgreSQL keeps its data",
    )
    db_pool_size: int = Field(default=10, validation_alias="BOOKBRIDGE_DB_POOL_SIZE")
    db_max_overflow: int = Field(default=10, validation_alias="BOOKBRIDGE_DB_MAX_OVERFLOW")
    db_pool_timeout: float = Field(
        default=30.0,
        validation_alias="BOOKBRIDGE_DB_POOL_TIMEOUT",
        description="seconds a request waits for a pooled connection before it fails",
    )
    max_page_size: int = Field(default=100, validation_alias="BOOKBRIDGE_MAX_PAGE_SIZE")
    default_page_size: int = Field(default=20, validation_alias="BOOKBRIDGE_DEFAULT_PAGE_SIZE")
    log_level: str = Field(default="INFO", validation_alias="BOOKBRIDGE_LOG_LEVEL")
    security: SecuritySettings = Field(
        default_factory=SecuritySettings, description="tokens, limits, trusted documents"
    )
    observability: ObservabilitySettings = Field(
        default_factory=ObservabilitySettings, description="logs, metrics, tracing"
    )
    reco: RecoSettings = Field(default_factory=RecoSettings, description="BOOKBRIDGE_RECO_*")
    response_cache: ResponseCacheSettings = Field(
        default_factory=ResponseCacheSettings, description="BOOKBRIDGE_RESPONSE_CACHE_*"
    )
    max_body_bytes: int = Field(
        default=16 << 20,
        validation_alias="BOOKBRIDGE_MAX_BODY_BYTES",
        description="largest request body read from a client (compressed size when gzipped): 413",
    )
    max_decompressed_body_bytes: int = Field(
        default=64 << 20,
        validation_alias="BOOKBRIDGE_MAX_DECOMPRESSED_BODY_BYTES",
        description="largest size a gzip request body may inflate to: 413 beyond",
    )
    gzip_min_response_bytes: int = Field(
        default=1024,
        validation_alias="BOOKBRIDGE_GZIP_MIN_RESPONSE_BYTES",
        description="responses at least this large are gzipped when the client accepts gzip",
    )

    @property
    def production(self) -> bool:
        return self.bookbridge_env == "production"


def normalize_database_url(url: str) -> str:
    """Accept postgres://, postgresql:// and postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {url.split(':', 1)[0]}://...")
