"""Text cells of every CSV Mesure writes, safe to open in a spreadsheet (CSV injection).

Visitors choose much of what is stored (event names, campaign values, properties); a cell that
starts like a formula would be run by Excel, LibreOffice or Google Sheets when the file is
opened. Such a cell is written with a single quote in front, which spreadsheets show as text and
hide. A cell that already starts with a quote gets one too, so the rule can be undone without
guessing: drop the first character of every cell that starts with a quote.

Both writers use this module, the reports' breakdown download and the privacy exports (whose
manifest states the rule); it imports nothing of Mesure, so either can import it.
"""

from __future__ import annotations

#: What a cell may start with for a spreadsheet to read it as a formula (OWASP's list), and the
#: quote itself.
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "'")
PREFIX = "'"


def defuse(value: str) -> str:
    """``value`` as a CSV text cell: with :data:`PREFIX` in front when it starts with one of
    :data:`FORMULA_STARTS`, unchanged otherwise."""
    return PREFIX + value if value.startswith(FORMULA_STARTS) else value
