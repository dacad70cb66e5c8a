"""The set of loaders one request gets; built fresh per request so nothing caches across users."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from app.core.viewer import ANONYMOUS, StudentScope, Viewer
from loaders.catalog import (
    BookByIdLoader,
    BooksByPublisherLoader,
    BooksByTopicLoader,
    BookWithPublisherByIdLoader,
    PublisherByIdLoader,
    TopicByIdLoader,
    TopicWeightsByBookLoader,
)
from loaders.recommendations import RecommendationsByStudySetLoader
from loaders.study import StudySetByIdLoader, TopicIdsByStudySetLoader
from loaders.taxonomy import (
    CategoriesByParentLoader,
    CategoryByIdLoader,
    GradeByIdLoader,
    SubjectByIdLoader,
)

if TYPE_CHECKING:
    from app.runtime.services import Services


class Loaders:
    """Each loader is made on first use: a request pays only for the loaders it touches."""

    def __init__(self, services: Services, viewer: Viewer = ANONYMOUS) -> None:
        self._services = services
        self._engine = services.read_engine
        self._viewer = viewer  # filters the loaders of students' data (in their SQL)

    @classmethod
    def create(cls, services: Services, viewer: Viewer = ANONYMOUS) -> Loaders:
        return cls(services, viewer)

    @cached_property
    def publisher_by_id(self) -> PublisherByIdLoader:
        return PublisherByIdLoader(self._engine)

    @cached_property
    def book_by_id(self) -> BookByIdLoader:
        return BookByIdLoader(self._engine)

    @cached_property
    def book_with_publisher_by_id(self) -> BookWithPublisherByIdLoader:
        return BookWithPublisherByIdLoader(self._engine)

    @cached_property
    def topic_by_id(self) -> TopicByIdLoader:
        return TopicByIdLoader(self._engine)

    @cached_property
    def topic_weights_by_book(self) -> TopicWeightsByBookLoader:
        return TopicWeightsByBookLoader(self._engine)

    @cached_property
    def books_by_publisher(self) -> BooksByPublisherLoader:
        return BooksByPublisherLoader(self._engine)

    @cached_property
    def books_by_topic(self) -> BooksByTopicLoader:
        return BooksByTopicLoader(self._engine)

    @cached_property
    def subject_by_id(self) -> SubjectByIdLoader:
        return SubjectByIdLoader(self._engine)

    @cached_property
    def grade_by_id(self) -> GradeByIdLoader:
        return GradeByIdLoader(self._engine)

    @cached_property
    def category_by_id(self) -> CategoryByIdLoader:
        return CategoryByIdLoader(self._engine)

    @cached_property
    def categories_by_parent(self) -> CategoriesByParentLoader:
        return CategoriesByParentLoader(self._engine)

    @cached_property
    def study_set_by_id(self) -> StudySetByIdLoader:
        return StudySetByIdLoader(self._engine, self._viewer)

    @cached_property
    def topic_ids_by_study_set(self) -> TopicIdsByStudySetLoader:
        return TopicIdsByStudySetLoader(self._engine, self._viewer)

    @cached_property
    def recommendations_by_study_set(self) -> RecommendationsByStudySetLoader:
        return RecommendationsByStudySetLoader(self._services, StudentScope.of(self._viewer))
