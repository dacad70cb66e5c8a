"""Observability settings (BOOKBRIDGE_*); the tracing exporter itself follows the OTEL_* variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKBRIDGE_", extra="ignore")

    log_format: Literal["json", "text"] | None = Field(
        default=None, description="json in production, text in development when unset"
    )
    metrics: bool = Field(default=True, description="serve GET /metrics")
    metrics_max_operations: int = Field(
        default=200, gt=0, description="distinct operation names labelled before 'other'"
    )
