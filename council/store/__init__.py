"""The store: the ledger (the one record of every run), the run's sink, its file exports,
and the loader every reader goes through."""

from council.store.ledger import LEDGER_FILE, Ledger
from council.store.loader import load_run, resolve_run_id

__all__ = ["LEDGER_FILE", "Ledger", "load_run", "resolve_run_id"]
