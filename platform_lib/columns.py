"""Text in aligned columns, as the `mesh` commands print tables and lists of commands."""

from __future__ import annotations


def aligned(rows: list[list[str]], right: tuple[int, ...] = (), indent: str = "") -> list[str]:
    """Rows of text as columns two spaces apart, each as wide as its widest cell; the columns in `right` aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]
