"""The SQLite backend (the default): events, rollups, reports, privacy, accounts, saved goals
and funnels."""

from __future__ import annotations

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils without its optional pandas/numpy support, which Mesure never uses.

    sqlite-utils imports pandas and numpy whenever they happen to be installed: on a machine
    that has them that costs the collector 85 MB of resident memory and 0.4 s of start-up
    (measured by the ingest benchmark). Both stay importable for any other code afterwards.
    Done here, where every SQLite module of the backend is imported from, so it runs before
    any of them imports sqlite-utils.
    """
    if "sqlite_utils" in sys.modules:
        return
    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in blocked:
            del sys.modules[name]


_import_sqlite_utils_without_pandas()
