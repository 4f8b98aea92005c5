"""The data dictionary: what every column of every table means, its unit and where it comes from.

Each family keeps its dictionary next to its code (`ode/columns.py`, `gd/columns.py`,
`four_phases/columns.py`) as {table: {column: Column}}; a name may be a pattern (`rd_*`, `sv_*`)
for a family of columns. The store writes each entry into its Parquet field's metadata
(`meaning`, `unit`, `source`), so a table explains itself in pandas, polars or duckdb;
`condense describe DIR` prints it back, the report shows it, and the README's column lists are
this module's `markdown()` (tests/test_columns.py checks that they agree).
"""

from __future__ import annotations

import fnmatch
from typing import NamedTuple

FIELD_KEYS = ("meaning", "unit", "source")


class Column(NamedTuple):
    meaning: str
    unit: str = ""  # "" for a dimensionless number, a label or a flag
    source: str = ""  # the paper's equation / section, or the module that computes it
    # a label column's possible values, in order: every table stores exactly these categories
    # (pandas compares two sweeps' `status` only when their categories are the same)
    values: tuple[str, ...] = ()


def entry(dictionary: dict, column: str) -> Column | None:
    """The entry of `column` in one table's dictionary: its own name first, else the first pattern
    that matches it."""
    if column in dictionary:
        return dictionary[column]
    for name, col in dictionary.items():
        if any(ch in name for ch in "*?[") and fnmatch.fnmatchcase(column, name):
            return col
    return None


def undocumented(dictionary: dict, columns) -> list[str]:
    """The columns that have no entry."""
    return [c for c in columns if entry(dictionary, c) is None]


def field_metadata(col: Column) -> dict[bytes, bytes]:
    return {k.encode(): str(v).encode() for k, v in zip(FIELD_KEYS, col) if v}


def from_schema(schema) -> dict[str, Column]:
    """{column: Column} read back from a Parquet / Arrow schema's field metadata (columns without
    an entry get an empty one)."""
    out = {}
    for field in schema:
        meta = field.metadata or {}
        out[field.name] = Column(*(meta.get(k.encode(), b"").decode() for k in FIELD_KEYS))
    return out


def short_type(arrow_type) -> str:
    """An Arrow type as a reader thinks of it: float64, int64, bool, category, matrix, …"""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return "category"
    if pa.types.is_list(arrow_type):
        return "matrix" if pa.types.is_list(arrow_type.value_type) else "list"
    return {"double": "float64", "float": "float32", "string": "str", "large_string": "str"}.get(str(arrow_type), str(arrow_type))


def lines(table: str, columns: dict[str, Column], dtypes: dict[str, str] | None = None) -> list[str]:
    """A table's dictionary as aligned text lines (what `condense describe` prints)."""
    dtypes = dtypes or {}
    width = max((len(c) for c in columns), default=0)
    out = [f"{table}/ ({len(columns)} columns)"]
    for name, col in columns.items():
        kind = f" {dtypes[name]:<8}" if name in dtypes else ""
        unit = f" ({col.unit})" if col.unit else ""
        source = f"  — {col.source}" if col.source else ""
        out.append(f"  {name:<{width}}{kind} {col.meaning or '(no entry)'}{unit}{source}")
    return out


def markdown(label: str, dictionaries: dict[str, dict[str, Column]]) -> str:
    """One family's dictionary as Markdown tables, one per table (the README's column lists)."""
    parts = []
    for table, cols in dictionaries.items():
        parts.append(f"<details><summary><b>{label}: {table}/</b> ({len(cols)} columns)</summary>\n\n"
                     "| column | meaning | unit | source |\n|---|---|---|---|")
        for name, col in cols.items():
            cell = (lambda s: s.replace("|", "\\|"))
            parts.append(f"| `{name}` | {cell(col.meaning)} | {cell(col.unit)} | {cell(col.source)} |")
        parts.append("\n</details>\n")
    return "\n".join(parts)
