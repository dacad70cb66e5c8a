"""The loader of study sets' recommendation lists: a page of study sets computes its misses once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.core.viewer import StudentScope
from app.reco import service
from app.reco.service import ListKey
from app.reco.strategies import RecList
from loaders.base import BatchLoader

if TYPE_CHECKING:
    from app.runtime.services import Services


class RecommendationsByStudySetLoader(BatchLoader[ListKey, RecList]):
    """Lists by (study set, first, strategy) through the recommendation cache, for one viewer.

    Not a ReadLoader: the service takes its own connections (one per HYBRID component, none
    held while waiting for another), and cache hits take none at all."""

    def __init__(self, services: Services, scope: StudentScope) -> None:
        super().__init__()
        self._services = services
        self._scope = scope

    async def load_batch(self, keys: list[ListKey]) -> Sequence[RecList | Exception]:
        return await service.recommendations_many(self._services, keys, self._scope)
