"""Every settings section, read from the environment (pydantic-settings); never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
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
    graphiql_assets: Literal["bundled", "cdn"] = Field(
        default="bundled",
        description="bundled: GraphiQL's React/GraphiQL/explorer files are served by bookbridge "
        "(works offline); cdn: the same pinned files from a public CDN",
    )
    field_suggestions: bool | None = None
    mask_errors: bool | None = None

    max_depth: int = Field(default=12, gt=0)
    max_aliases: int = Field(default=30, gt=0)
    max_tokens: int = Field(default=2000, gt=0)
    max_cost: int = Field(default=20_000, gt=0, description="estimated objects a query may touch")
    list_cost_estimate: int = Field(default=10, gt=0, description="size assumed for plain lists")

    # Hostile input (docs/security.md): each decided before the costlier steps behind it.
    max_inflate_ratio: int = Field(
        default=100,
        gt=0,
        description="a gzip body may inflate to this many times its compressed size (past 1 MiB)",
    )
    max_json_depth: int = Field(
        default=64, gt=0, le=200, description="nesting of arrays/objects in a JSON body"
    )
    max_json_elements: int = Field(
        default=1_000_000, gt=0, description="values (objects, arrays, scalars) in a JSON body"
    )
    max_document_chars: int = Field(
        default=50_000, gt=0, description="length of a GraphQL document's text"
    )
    document_cache_entries: int = Field(
        default=512, ge=0, description="parsed and validated documents kept per process"
    )
    document_cache_bytes: int = Field(
        default=8 << 20, ge=0, description="document text kept by that cache, in characters"
    )
    unavailable_retry_after_seconds: int = Field(
        default=2, ge=1, description="Retry-After of a 503 while the database is unreachable"
    )
    rate_limit_redis_retry_seconds: float = Field(
        default=1.0,
        ge=0,
        description="after a Redis failure the rate limiter counts locally this long",
    )

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


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKBRIDGE_", extra="ignore")

    log_format: Literal["json", "text"] | None = Field(
        default=None, description="json in production, text in development when unset"
    )
    metrics: bool = Field(default=True, description="serve GET /metrics")
    metrics_max_operations: int = Field(
        default=200, gt=0, description="distinct operation names labelled before 'other'"
    )
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="`bookbridge worker` serves /metrics here; 0: off"
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="address the worker's metrics port binds (0.0.0.0 in a container)",
    )


class Variant(BaseModel):
    name: str
    strategy: str  # a RecommendationStrategy name: TOPIC, COLLABORATIVE, CONTENT, TRENDING, HYBRID
    share: float = Field(gt=0)


class Experiment(BaseModel):
    """An A/B experiment: users split by a stable hash of (experiment id, user id)."""

    id: str
    variants: list[Variant] = Field(min_length=1)


class RecoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKBRIDGE_RECO_", extra="ignore")

    half_life_days: float = Field(default=14.0, gt=0, description="recency half-life")
    exclude_event_types: list[str] = Field(
        default=["complete"], description="a student's books with these events are left out"
    )
    max_first: int = Field(default=50, description="largest `first` for recommendation lists")
    candidates_per_topic: int = Field(default=100, description="top books read per topic")
    candidates_per_strategy: int = Field(default=100, description="list length blended by HYBRID")
    seed_books: int = Field(
        default=100, description="a study set's most recent books used as seeds"
    )
    neighbours_k: int = Field(default=50, description="neighbours kept per book and kind")
    ease_lambda: float = Field(default=200.0, gt=0, description="dense EASE L2 regularisation")
    ease_max_items: int = Field(
        default=12_000, description="dense EASE is a candidate up to this many engaged books"
    )
    collab_model: str = Field(
        default="auto",
        pattern="^(auto|itemknn|rp3beta|ease_local|ease)$",
        description="the collab lists' model: 'auto' chooses by validation NDCG@10",
    )
    ease_local_neighbourhood: int = Field(
        default=100, ge=2, description="local EASE: most co-engaged books per regression"
    )
    selection_users: int = Field(
        default=5000, ge=1, description="students validated on (seeded sample) by the lists job"
    )
    selection_min_users: int = Field(
        default=200, ge=1, description="fewer students to validate on: the default model, weights"
    )
    selection_seconds: float = Field(
        default=60.0,
        gt=0,
        description="CPU seconds for fitting candidates on the validation split (not wall time)",
    )
    selection_memory_mb: float = Field(
        default=3000.0, gt=0, description="a candidate estimated to need more is not fitted"
    )
    tune_hybrid_weights: bool = Field(
        default=True, description="HYBRID weights chosen by the lists job's validation"
    )
    trending_size: int = Field(default=200, description="books kept per subject/grade trend list")
    hybrid_weights: dict[str, float] = Field(
        default={"COLLABORATIVE": 1.0, "TOPIC": 0.05, "CONTENT": 0.1, "TRENDING": 0.01},
        description="HYBRID blend of per-strategy scores, each normalised to its list maximum; "
        "used until the lists job has validated weights (or always without tune_hybrid_weights)",
    )
    topic_match_limit: int = Field(default=5, description="topics matched from a study set title")
    # caching
    cache_ttl_seconds: float = Field(default=5.0, description="in-process cache TTL")
    cache_refresh_ahead_seconds: float = Field(
        default=1.0, ge=0, description="a hit this close to the TTL refreshes in the background"
    )
    cache_max_age_seconds: float = Field(
        default=60.0,
        ge=0,
        description="how long a refresh may keep a list whose inputs did not change",
    )
    stored_list_max_age_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="a study set's stored HYBRID list (study_set_lists) is served this long at"
        " most; 0 stores none (no compiled study-set recommendations)",
    )
    stored_list_fill: int = Field(
        default=5000,
        ge=0,
        description="after each lists job run, the worker stores the lists of this many most"
        " recently engaged study sets; 0: none (lists are stored when first read)",
    )
    stored_list_background_writes: int = Field(
        default=8,
        ge=0,
        description="a list computed on a miss is stored after its response, by at most this"
        " many writes at once (one more is written before its response); 0: always before",
    )
    stored_list_fill_seconds: float = Field(
        default=60.0,
        ge=0,
        description="the worker's fill starts no batch of 200 sets after this many seconds (the"
        " most recently engaged first; the rest are stored when first read); 0: no limit",
    )
    cache_refresh_batch: int = Field(
        default=4, ge=1, description="lists computed together by one background refresh"
    )
    cache_stale_seconds: float = Field(
        default=2.0,
        ge=0,
        description="how long past its TTL an entry may be served while its refresh runs",
    )
    cache_max_entries: int = Field(default=10_000, description="in-process cache size bound")
    redis_ttl_seconds: int = Field(default=600, description="Redis cache TTL")
    redis_timeout_seconds: float = Field(
        default=0.05,
        gt=0,
        description="the most a Redis call may cost before PostgreSQL answers, loop keeping up",
    )
    redis_busy_limit_seconds: float = Field(
        default=0.5,
        gt=0,
        description="the most a Redis call may cost while this process's event loop is behind",
    )
    redis_retry_seconds: float = Field(
        default=1.0, description="after a Redis failure, skip Redis this long, then try again"
    )
    # experiments and analytics
    experiments: list[Experiment] = Field(default=[], description="JSON list of A/B experiments")
    attribution_window_hours: float = Field(default=168.0, description="click attribution window")
    k_anonymity: int = Field(default=5, ge=1, description="counts from fewer students are hidden")
    # worker
    worker_interval_seconds: float = Field(default=60.0, description="how often jobs run")


class ResponseCacheSettings(BaseSettings):
    """BOOKBRIDGE_RESPONSE_CACHE_*: unset `enabled` means on, except when BOOKBRIDGE_ENV=test."""

    model_config = SettingsConfigDict(env_prefix="BOOKBRIDGE_RESPONSE_CACHE_", extra="ignore")

    enabled: bool | None = None
    entries: int = Field(default=2048, ge=0, description="responses kept per process")
    max_bytes: int = Field(default=64 << 20, ge=0, description="bytes kept per process")
    ttl_seconds: float = Field(default=60.0, gt=0, description="upper bound on any staleness")


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
    compiled_reads: bool = Field(
        default=True,
        validation_alias="BOOKBRIDGE_COMPILED_READS",
        description="answer catalog reads with one compiled SQL statement (off: field resolvers)",
    )
    compiled_reads_driver: bool = Field(
        default=True,
        validation_alias="BOOKBRIDGE_COMPILED_READS_DRIVER",
        description="run the compiled statement on the asyncpg connection itself (less CPU; "
        "SQLAlchemy's cursor events and its OpenTelemetry span do not see it, asyncpg's query "
        "loggers and the graphql.compiled_read span do)",
    )
    compiled_reads_fast_path: bool = Field(
        default=True,
        validation_alias="BOOKBRIDGE_COMPILED_READS_FAST_PATH",
        description="answer compiled reads of documents already parsed, validated, costed and "
        "planned without Strawberry's per-request pipeline (same bytes, errors, spans, metrics)",
    )
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
