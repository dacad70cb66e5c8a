"""Per-request dataloaders: one batched query per relation and level, whatever the page size."""

from loaders.registry import Loaders

__all__ = ["Loaders"]
