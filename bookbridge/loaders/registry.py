"""The set of loaders one request gets; built fresh per request so nothing caches across users."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bookbridge.app.auth.viewer import ANONYMOUS, Viewer
from bookbridge.loaders.catalog import (
    BookByIdLoader,
    BooksByPublisherLoader,
    BooksByTopicLoader,
    PublisherByIdLoader,
    TopicByIdLoader,
    TopicWeightsByBookLoader,
)
from bookbridge.loaders.study import StudySetByIdLoader, TopicIdsByStudySetLoader
from bookbridge.loaders.taxonomy import (
    CategoriesByParentLoader,
    CategoryByIdLoader,
    GradeByIdLoader,
    SubjectByIdLoader,
)


@dataclass(slots=True)
class Loaders:
    publisher_by_id: PublisherByIdLoader
    book_by_id: BookByIdLoader
    topic_by_id: TopicByIdLoader
    topic_weights_by_book: TopicWeightsByBookLoader
    books_by_publisher: BooksByPublisherLoader
    books_by_topic: BooksByTopicLoader
    subject_by_id: SubjectByIdLoader
    grade_by_id: GradeByIdLoader
    category_by_id: CategoryByIdLoader
    categories_by_parent: CategoriesByParentLoader
    study_set_by_id: StudySetByIdLoader
    topic_ids_by_study_set: TopicIdsByStudySetLoader

    @classmethod
    def create(cls, engine: AsyncEngine, viewer: Viewer = ANONYMOUS) -> Loaders:
        """`viewer` filters the loaders of students' data (in their SQL, not afterwards)."""
        return cls(
            publisher_by_id=PublisherByIdLoader(engine),
            book_by_id=BookByIdLoader(engine),
            topic_by_id=TopicByIdLoader(engine),
            topic_weights_by_book=TopicWeightsByBookLoader(engine),
            books_by_publisher=BooksByPublisherLoader(engine),
            books_by_topic=BooksByTopicLoader(engine),
            subject_by_id=SubjectByIdLoader(engine),
            grade_by_id=GradeByIdLoader(engine),
            category_by_id=CategoryByIdLoader(engine),
            categories_by_parent=CategoriesByParentLoader(engine),
            study_set_by_id=StudySetByIdLoader(engine, viewer),
            topic_ids_by_study_set=TopicIdsByStudySetLoader(engine, viewer),
        )
