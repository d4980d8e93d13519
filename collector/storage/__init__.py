"""Storage: the only package that speaks SQL.

Its API speaks the domain (insert events, count opt-outs, list rows) so that another backend
(ClickHouse, for owners who outgrow one machine) can implement the same functions.
"""

from __future__ import annotations

from collector.storage.sqlite import Storage, open_storage

__all__ = ["Storage", "open_storage"]
