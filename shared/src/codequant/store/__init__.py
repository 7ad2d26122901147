"""The results store: SQLAlchemy 2, SQLite by default, PostgreSQL by URL."""

from codequant.store.db import Store
from codequant.store.models import (
    Base,
    ChatAnswer,
    Comparison,
    Completion,
    Execution,
    Job,
    JobEnvironment,
    ServingMeasurement,
    Study,
    StudyVariant,
    Variant,
    Verification,
)

__all__ = [
    "Base",
    "ChatAnswer",
    "Comparison",
    "Completion",
    "Execution",
    "Job",
    "JobEnvironment",
    "ServingMeasurement",
    "Store",
    "Study",
    "StudyVariant",
    "Variant",
    "Verification",
]
