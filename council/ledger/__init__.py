"""The run ledger (SQLite): every run and call, for listing, resuming and replaying runs."""

from council.ledger.store import LEDGER_FILE, Ledger

__all__ = ["LEDGER_FILE", "Ledger"]
