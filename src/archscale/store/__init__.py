"""The results store: runs, training curves and evals of every sweep in one SQLite file."""

from archscale.store.results import FINAL_STATUSES, ResultsStore, StoreError
from archscale.store.schema import SCHEMA_VERSION, STATUSES

__all__ = ["FINAL_STATUSES", "SCHEMA_VERSION", "STATUSES", "ResultsStore", "StoreError"]
