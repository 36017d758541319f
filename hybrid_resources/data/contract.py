"""The landing-file contract: what a file must look like before any of its rows are used.

A landing file is CSV (UTF-8, comma-separated, header row) or Parquet with

- a target column (``label`` unless the dataset names another) with no empty cell: class labels
  (ints or strings; a file may hold only some of the classes) or, for regression, numbers,
- an optional ``sample_id`` column, unique and non-empty when present,
- one or more feature columns (every other column): numeric ones finite and bounded, categorical
  ones text (declared, or inferred by :func:`categorical_columns`); missing cells are allowed up
  to the column's missing-value policy and imputed later with values fitted on train.

The contract is defined once, by :class:`DatasetContract`. Everything else derives from it:

1. :func:`read_landing_file` parses the bytes (extension, encoding, delimiter, emptiness) and
   raises :class:`ContractViolation` for anything that is not even a table.
2. :func:`validate_contract` profiles the table with polars and validates it with a
   Great Expectations 1.x suite built from the contract (see :func:`build_expectations`).
3. :func:`to_landing_table` converts a valid table to ids, string labels and a float64 matrix.

:func:`load_landing_file` does all three and raises on the first failure.

Why GE validates a *profile* and not every cell: one expectation per feature column costs
~7 ms each in GE (measured: 1,000 columns x 2 expectations = 15 s), and a melted long
frame of a 5M-row file would not fit in memory. So polars computes one row per feature
column (type, missing/NaN/inf counts, max |value| over finite values) in a single pass, and
GE validates that profile (one expectation per rule, whatever the width) plus a narrow
row-level frame (label, sample_id) for the row rules. GE's unexpected rows of the profile
name the offending columns directly.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:  # pragma: no cover - typing only; GE is imported lazily (it costs ~2 s)
    import pandas as pd

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 8192
_CANDIDATE_DELIMITERS = {";": "semicolon ';'", "\t": "tab", "|": "pipe '|'"}
_EXAMPLES = 5  # how many offending values/columns a reason names before "..."
SAMPLE_CHARS = 16  # how much of one value of a file a reason may quote


# --------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetContract:
    """The rules a landing file must satisfy. The single source of truth for every check.

    The dataset's own declarations (its task, target, categorical columns and missing-value
    policy) come from its contract file (:func:`load_dataset_contract`); without one, these
    defaults apply and the task and categorical columns are inferred (:func:`resolve_task`,
    :func:`categorical_columns`).

    >>> DatasetContract().task
    'auto'
    """

    label_column: str = "label"  # the target column
    id_column: str = "sample_id"
    labelled: bool = True  # False: a scoring file, with no label column and a required sample id
    task: str = "auto"  # auto | binary | multiclass | regression
    classes: tuple[str, ...] = ()  # the declared class list; empty: any class, a new one is flagged
    max_classes: int = 20  # classification: at most this many classes (and auto: more is regression)
    categorical: tuple[str, ...] | None = None  # None: text columns with few levels are inferred categorical
    ordinal: tuple[str, ...] = ()  # categorical columns encoded as ordinal codes (the rest one-hot)
    max_levels: int = 20  # one-hot cap: the most frequent train levels; rarer and unseen ones encode as all-zero
    max_inferred_levels: int = 50  # a text column with more distinct values is not inferred categorical
    impute: str = "median"  # numeric missing values: median | mean | most_frequent | constant
    impute_categorical: str = "most_frequent"  # categorical missing values: most_frequent | constant
    fill_value: float = 0.0  # the constant of "constant" (numeric); categorical constant is "missing"
    max_missing_rate: float = 0.5  # a file with a larger share of missing cells in a column is refused
    column_policies: tuple[tuple[str, str, float], ...] = ()  # per column: (name, impute, max_missing_rate)
    min_rows: int = 4
    max_rows: int = 5_000_000
    max_feature_columns: int = 4096
    max_abs_value: float = 1e12  # "absurdly large values" are out of contract

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for metadata and sidecars."""
        return asdict(self)

    def fingerprint(self) -> str:
        """Short content hash of the contract, so lineage can say which rules a file passed."""
        canonical = repr(sorted(self.to_dict().items())).encode()
        return hashlib.sha256(canonical).hexdigest()[:12]

    def feature_columns(self, columns: list[str]) -> list[str]:
        """Every column that is neither the label nor the id, in file order."""
        return [name for name in columns if name not in (self.label_column, self.id_column)]

    def policy_of(self, column: str, categorical: bool = False) -> tuple[str, float]:
        """(impute strategy, max missing rate) of one feature column."""
        for name, impute, rate in self.column_policies:
            if name == column:
                return impute, rate
        return (self.impute_categorical if categorical else self.impute), self.max_missing_rate

    @property
    def max_file_classes(self) -> int:
        """How many distinct classes one classification file may hold."""
        return 2 if self.task == "binary" else len(self.classes) or self.max_classes


class ContractViolation(Exception):
    """A landing file breaks the contract.

    ``check`` is a short machine name (``parse``, ``encoding``, ``required_columns``,
    ``numeric_features``, ``finite_values``, ``value_range``, ``label_classes``,
    ``missing_labels``, ``unique_sample_id``, ``missing_sample_id``, ``row_count``,
    ``feature_columns``, ``duplicate_columns``; a zone's refusals, ``zones.ZoneRefusal``:
    ``symlink``, ``not_regular_file``, ``outside_zone``); ``reason`` is one human sentence (or
    several joined by "; ") that quotes values of the file only as :func:`sample` s; ``details``
    is JSON-safe.
    """

    def __init__(self, check: str, reason: str, details: dict | None = None) -> None:
        super().__init__(f"[{check}] {reason}")
        self.check = check
        self.reason = reason
        self.details = dict(details or {})


def sample(value: Any, limit: int = SAMPLE_CHARS) -> str:
    """A value from a file (a cell, a column name) as a reason may quote it: its text, cut to
    ``limit`` characters and "…", so a secret in a file never reaches a reason (the warehouse,
    Dagster metadata, logs) whole. Applying it again changes nothing.

    >>> sample("AKIAIOSFODNN7EXAMPLEKEY")
    'AKIAIOSFODNN7EXA…'
    """
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def quote_samples(items: list[Any]) -> str:
    """The first few ``items`` quoted as :func:`sample` s: "'a', 'b' and 3 more"."""
    shown = ", ".join(repr(sample(item)) for item in items[:_EXAMPLES])
    return shown + (f" and {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else "")


def redact_message(message: Any, *, limit: int = 200) -> str:
    """A parser's error message (which may quote the file) as a reason may carry it: the first
    line, every run of non-space characters cut as :func:`sample` cuts a value, ``limit``
    characters at most."""
    first = (str(message).strip().splitlines() or [type(message).__name__])[0]
    return sample(" ".join(sample(word) for word in first.split(" ")), limit)


@dataclass(frozen=True)
class LandingTable:
    """The rows of a valid landing file, ready for the warehouse.

    ``features`` holds the numeric columns (NaN where a value is missing, imputed later with
    values fitted on train); ``categories`` the categorical columns as text (None where missing).
    """

    sample_ids: list[str]
    labels: list[str]  # labels as strings, whatever their type in the file
    feature_names: list[str]  # the numeric feature columns
    features: np.ndarray  # float64, shape (n_rows, n_features)
    category_names: list[str] = field(default_factory=list)  # the categorical feature columns
    categories: list[list[str | None]] = field(default_factory=list)  # per row, one value per category name

    def n_rows(self) -> int:
        return len(self.sample_ids)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate_contract`.

    ``failed_checks`` holds contract check names (each at most once, in suite order);
    ``reasons`` one human sentence per failed check, naming columns and counts.
    """

    success: bool
    failed_checks: list[str]
    reasons: list[str]
    evaluated_expectations: int
    successful_expectations: int
    n_rows: int = 0
    n_feature_columns: int = 0
    contract_fingerprint: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # per failed check, JSON-safe
    blank_lines_skipped: int = 0  # blank or whitespace-only CSV lines left out before validation

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe summary for Dagster metadata (and quarantine sidecars)."""
        return {
            "success": self.success,
            "failed_checks": list(self.failed_checks),
            "reasons": list(self.reasons),
            "evaluated_expectations": self.evaluated_expectations,
            "successful_expectations": self.successful_expectations,
            "n_rows": self.n_rows,
            "n_feature_columns": self.n_feature_columns,
            "contract_fingerprint": self.contract_fingerprint,
            "blank_lines_skipped": self.blank_lines_skipped,
        }


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedFile:
    """A landing file parsed into a table, and what parsing left out."""

    frame: pl.DataFrame
    blank_lines_skipped: int = 0


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks (constant memory).

    ``path`` is a local path or any object with ``open("rb")`` (a ``UPath`` on S3, memory, ...).
    """
    digest = hashlib.sha256()
    with (path.open("rb") if hasattr(path, "open") else open(path, "rb")) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def row_hash(label: str, features: Any, categories: Any = ()) -> str:
    """Content hash of one sample: sha256(label | float64 bytes of its features [| its categories]),
    16 hex characters.

    -0.0 is folded into 0.0, so the same values written by another tool hash alike; every NaN
    (a missing value) hashes alike. Features and categories must be in the canonical (sorted
    column name) order, the order the warehouse stores. A row without categorical columns hashes
    as it always did.

    >>> row_hash("1", [0.5, -0.0]) == row_hash("1", [0.5, 0.0])
    True
    """
    values = np.asarray(features, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
    content = label.encode() + b"|" + values.tobytes()
    if len(categories):
        content += b"|" + "\x1f".join("\x00" if value is None else str(value) for value in categories).encode()
    return hashlib.sha256(content).hexdigest()[:16]


def refuse_non_primitive_columns(frame: pl.DataFrame) -> None:
    """Raise ``ContractViolation`` ("column_types") when a column holds lists, arrays, structs,
    bytes or objects: a cell of a landing file is one number, one text or one boolean."""
    nested = {name: str(dtype) for name, dtype in frame.schema.items()
              if dtype.is_nested() or dtype in (pl.Binary, pl.Object)}
    if nested:
        raise ContractViolation("column_types", f"{len(nested)} column(s) hold more than one value per cell: "
                                f"{quote_samples(sorted(nested))} (types {quote_samples(sorted(set(nested.values())))}); "
                                "each cell must be one number, text or boolean", {"columns": dict(list(nested.items())[:100])})


def read_landing_file(path: str | os.PathLike[str], contract: DatasetContract = DatasetContract()) -> ParsedFile:
    """Parse a landing file into a polars DataFrame, or raise :class:`ContractViolation`.

    The format comes from the extension (``.csv``, ``.parquet``, ``.pq``; case-insensitive).
    CSV is read as text and each feature column becomes Float64 when every value parses as
    a number; a column with any non-number stays String so that :func:`validate_contract`
    can name it and its bad values. ``label`` and ``sample_id`` stay strings (so ids such
    as ``00012`` keep their zeros). Parquet keeps its own types; the column and row counts
    its footer gives are checked against the contract before any data is read.

    Raises (check, reason) for: an unknown extension, an empty file ("parse"), binary
    content ("parse"), non-UTF-8 bytes ("encoding", with line and byte), a wrong delimiter
    ("parse", naming the delimiter that would split the header), duplicate header names
    ("duplicate_columns"), a header with no data rows ("row_count"), an unreadable
    Parquet file ("parse"), one whose footer counts too many columns ("feature_columns")
    or rows ("row_count"), and a Parquet column that is not a number, text or boolean: a list,
    array, struct, binary or object column ("column_types").
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, contract)
    if suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path, contract)
        refuse_non_primitive_columns(frame)
        return ParsedFile(frame)
    raise ContractViolation(
        "parse",
        f"unsupported file type {path.suffix or '(no extension)'!r} for {path.name!r}: "
        "landing files must be .csv, .parquet or .pq",
        {"suffix": path.suffix},
    )


def _read_csv(path: Path, contract: DatasetContract) -> ParsedFile:
    head = _read_head(path)
    if not head.strip():
        raise ContractViolation("parse", f"{path.name!r} is empty ({path.stat().st_size} bytes): no header, no rows",
                                {"size_bytes": path.stat().st_size})
    _reject_binary(path.name, head)
    _check_utf8(path)
    header_line = _header_line(path)
    _reject_duplicate_headers(path.name, next(csv.reader(io.StringIO(header_line)), []))
    with _without_blank_lines(path) as (text_path, skipped):
        try:
            # All as text: polars' type inference would either fail on a late "abc" or turn a
            # column into String silently; we decide types ourselves below.
            frame = pl.read_csv(text_path, infer_schema=False, separator=",", quote_char='"', encoding="utf8")
        except pl.exceptions.NoDataError as error:
            raise ContractViolation("parse", f"{path.name!r} has no CSV content: {redact_message(error)}") from error
        except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as error:
            message = redact_message(error)
            raise ContractViolation("parse", f"{path.name!r} is not a well-formed comma-separated file: {message}",
                                    {"error": message}) from error
    _reject_wrong_delimiter(path.name, frame, header_line)
    if frame.height == 0:
        raise ContractViolation(
            "row_count",
            f"{path.name!r} has a header ({frame.width} columns) but no data rows",
            {"columns": frame.columns[:50], "n_rows": 0, "blank_lines_skipped": skipped},
        )
    return ParsedFile(_type_csv_columns(frame, contract), skipped)


def _blank_line_flags(path: Path) -> Iterator[tuple[str, bool]]:
    """Each line of a UTF-8 CSV with whether it is blank: only whitespace, outside a quoted field."""
    inside_quotes = False
    with open(path, encoding="utf-8", newline="") as handle:
        for line in handle:
            yield line, not inside_quotes and not line.strip()
            if line.count('"') % 2:  # an escaped quote ("") counts twice and changes nothing
                inside_quotes = not inside_quotes


@contextmanager
def _without_blank_lines(path: Path) -> Iterator[tuple[Path, int]]:
    """``path`` itself when it has no blank lines, else a temporary copy without them; and how
    many were dropped. polars reads a blank line as a row of nulls, which the contract would
    then reject as a row without a label."""
    skipped = sum(blank for _, blank in _blank_line_flags(path))
    if not skipped:
        yield path, 0
        return
    with tempfile.TemporaryDirectory(prefix="landing-") as folder:
        cleaned = Path(folder) / path.name
        with open(cleaned, "w", encoding="utf-8", newline="") as out:
            out.writelines(line for line, blank in _blank_line_flags(path) if not blank)
        yield cleaned, skipped


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(_SNIFF_BYTES)


def _reject_binary(name: str, head: bytes) -> None:
    """Binary content under a .csv name: NUL bytes or mostly control bytes in the first 8 KiB."""
    if head.startswith(b"PAR1"):
        raise ContractViolation("parse", f"{name!r} is a Parquet file with a .csv name; rename it to .parquet",
                                {"magic": "PAR1"})
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 13))
    has_nul = b"\x00" in head
    if has_nul or controls > 0.05 * len(head):
        raise ContractViolation(
            "parse",
            f"{name!r} is binary, not a text CSV ({controls} control bytes in its first {len(head)} bytes"
            f"{', including NUL' if has_nul else ''})",
            {"control_bytes": controls, "sniffed_bytes": len(head)},
        )


def _check_utf8(path: Path) -> None:
    """Stream-decode the whole file as UTF-8 (constant memory); name the first bad byte's line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                bad = chunk[error.start:error.start + 4]
                line += chunk.count(b"\n", 0, error.start)
                raise ContractViolation(
                    "encoding",
                    f"{path.name!r} is not valid UTF-8: byte 0x{bad[0]:02x} at offset {offset + error.start} "
                    f"(line {line}); re-save the file as UTF-8 (it looks like Latin-1/Windows-1252)"
                    if bad[0] >= 0x80 else f"{path.name!r} is not valid UTF-8 at offset {offset + error.start}",
                    {"offset": offset + error.start, "line": line, "byte": f"0x{bad[0]:02x}"},
                ) from error
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise ContractViolation("encoding", f"{path.name!r} ends in a truncated UTF-8 sequence",
                                    {"offset": offset}) from error


def _header_line(path: Path) -> str:
    """The first non-blank line, whole (a wide header can be longer than the sniffed bytes)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for line in handle:
            if line.strip():
                return line.rstrip("\r\n")
    return ""


def _reject_duplicate_headers(name: str, header: list[str]) -> None:
    # polars would silently rename a repeated column to "<name>_duplicated_0".
    seen: set[str] = set()
    duplicates = sorted({column for column in header if column in seen or seen.add(column)})
    if duplicates:
        raise ContractViolation("duplicate_columns", f"{name!r} repeats header column(s) {quote_samples(duplicates)}",
                                {"duplicate_columns": duplicates})


def _reject_wrong_delimiter(name: str, frame: pl.DataFrame, header_line: str) -> None:
    """One column where ';', tab or '|' would split the header: the file uses another delimiter."""
    if frame.width != 1:
        return
    for delimiter, spoken in _CANDIDATE_DELIMITERS.items():
        fields = header_line.split(delimiter)
        if len(fields) > 1:
            raise ContractViolation(
                "parse",
                f"{name!r} has a single column {sample(frame.columns[0])!r}: it looks delimited by {spoken} "
                f"({len(fields)} columns when split on it); landing CSVs must be comma-separated",
                {"detected_delimiter": delimiter, "columns_if_split": len(fields)},
            )


def _type_csv_columns(frame: pl.DataFrame, contract: DatasetContract) -> pl.DataFrame:
    """Strip text cells; features become Float64 where every non-empty cell is a number."""
    stripped = frame.with_columns(pl.all().str.strip_chars())
    features = contract.feature_columns(stripped.columns)
    if not features:
        return stripped
    as_float = stripped.select(pl.col(features).cast(pl.Float64, strict=False))
    # A cell failed to parse if it had text and became null.
    failures = stripped.select(
        [(pl.col(name).is_not_null() & as_float[name].is_null()).sum().alias(name) for name in features]
    ).row(0)
    numeric = [name for name, failed in zip(features, failures) if failed == 0]
    return stripped.with_columns(as_float.select(numeric))


def _check_parquet_footer(path: Path, contract: DatasetContract) -> None:
    """Columns and rows as the Parquet footer gives them, before any data page is read: a file over
    the contract's column or row ceiling is refused without being loaded into memory."""
    n_columns = len(pl.read_parquet_schema(path))
    n_rows = pl.scan_parquet(path).select(pl.len()).collect().item()  # from the footer: no column is read
    if n_columns > contract.max_feature_columns + 2:  # the label and the id besides the features
        raise ContractViolation("feature_columns", f"{path.name!r} has {n_columns} columns (its footer says); the "
                                f"contract allows at most {contract.max_feature_columns} feature columns",
                                {"n_columns": n_columns})
    if n_rows > contract.max_rows:
        raise ContractViolation("row_count", f"{path.name!r} has {n_rows} rows (its footer says); the contract "
                                f"needs {contract.min_rows}..{contract.max_rows}", {"n_rows": n_rows})


def _read_parquet(path: Path, contract: DatasetContract) -> pl.DataFrame:
    if path.stat().st_size == 0:
        raise ContractViolation("parse", f"{path.name!r} is empty (0 bytes): not a Parquet file", {"size_bytes": 0})
    try:
        _check_parquet_footer(path, contract)
        frame = pl.read_parquet(path)
    except ContractViolation:
        raise
    except Exception as error:  # polars/pyarrow raise several types for corrupt files
        message = redact_message(error) if str(error) else type(error).__name__
        raise ContractViolation("parse", f"{path.name!r} is not a readable Parquet file: {message}",
                                {"error": message}) from error
    if frame.height == 0:
        raise ContractViolation("row_count", f"{path.name!r} has a schema ({frame.width} columns) but no rows",
                                {"columns": frame.columns[:50], "n_rows": 0})
    return frame


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _is_numeric(dtype: pl.DataType) -> bool:
    # Booleans are deliberately not numeric features: a "true/false" column is more likely
    # a flag that slipped in than a measurement (it can be declared categorical).
    return dtype.is_numeric()


def categorical_columns(df: pl.DataFrame, contract: DatasetContract = DatasetContract()) -> list[str]:
    """The feature columns of ``df`` that are categorical, in file order.

    Declared (``contract.categorical``): those of them present. Otherwise inferred, by a stated
    rule: a text or boolean column none of whose non-empty cells reads as a number, with at most
    ``max_inferred_levels`` distinct values and at most half as many as the file has rows (at least
    2): an id-like or free-text column is not a category. Later files of a dataset read the
    columns the first ingested file established (``ingestion.established_contract``).
    """
    features = contract.feature_columns(df.columns)
    if contract.categorical is not None:
        return [name for name in features if name in contract.categorical]
    schema = df.schema
    candidates = [name for name in features
                  if schema[name] in (pl.String, pl.Boolean) or isinstance(schema[name], (pl.Categorical, pl.Enum))]
    if not candidates:
        return []
    text = df.select(pl.col(candidates).cast(pl.String).str.strip_chars())
    stats = text.select(
        *[pl.col(name).n_unique().alias(f"{name}\x00levels") for name in candidates],
        *[pl.col(name).cast(pl.Float64, strict=False).is_not_null().sum().alias(f"{name}\x00numbers")
          for name in candidates],
    ).row(0, named=True)
    ceiling = min(contract.max_inferred_levels, max(2, df.height // 2))
    return [name for name in candidates
            if stats[f"{name}\x00numbers"] == 0 and stats[f"{name}\x00levels"] - (text[name].null_count() > 0) <= ceiling]


def feature_profile(df: pl.DataFrame, contract: DatasetContract = DatasetContract(),
                    categorical: list[str] | None = None) -> pl.DataFrame:
    """One row per feature column, computed in one polars pass; what GE validates.

    Columns: ``feature``, ``dtype``, ``is_numeric``, ``is_categorical``, ``usable`` (either),
    ``bad_values`` (cells that are not numbers, for text columns not categorical), ``missing``,
    ``nan``, ``pos_inf``, ``neg_inf``, ``infinite`` (their sum), ``max_abs`` (over finite values;
    null when none), ``missing_rate`` (missing or NaN cells / rows) and ``missing_excess`` (that
    rate minus the column's allowed rate: positive is a violation). ``categorical`` defaults to
    :func:`categorical_columns`.
    """
    features = contract.feature_columns(df.columns)
    categorical = categorical_columns(df, contract) if categorical is None else categorical
    schema = df.schema  # polars rebuilds the schema on every access: O(columns) each time
    numeric = [name for name in features if _is_numeric(schema[name]) and name not in categorical]
    stats: dict[str, list[Any]] = {"missing": [], "nan": [], "pos_inf": [], "neg_inf": [], "max_abs": []}
    if numeric and df.height:
        # One wildcard expression per statistic: 1,000 columns x 5 hand-built expressions
        # took polars ~1.3 s to plan; pl.all() expands cheaply (~50 ms).
        floats = df.select(pl.col(numeric).cast(pl.Float64))
        stats["missing"] = list(floats.null_count().row(0))
        stats["nan"] = list(floats.select(pl.all().is_nan().sum()).row(0))
        stats["pos_inf"] = list(floats.select((pl.all() == float("inf")).sum()).row(0))
        stats["neg_inf"] = list(floats.select((pl.all() == float("-inf")).sum()).row(0))
        stats["max_abs"] = list(floats.select(pl.all().filter(pl.all().is_finite()).abs().max()).row(0))
    else:
        stats = {key: [0 if key != "max_abs" else None] * len(numeric) for key in stats}
    by_name = {name: {key: values[i] for key, values in stats.items()} for i, name in enumerate(numeric)}
    missing_categories = df.select(pl.col(categorical).null_count()).row(0, named=True) if categorical else {}
    text = [name for name in features if name not in by_name and name not in categorical]
    bad_counts = _bad_value_counts(df, text)
    empty: dict[str, Any] = {key: None for key in stats}
    rows = []
    for name in features:
        row = {"feature": name, "dtype": str(schema[name]), "is_numeric": name in by_name,
               "is_categorical": name in categorical, "bad_values": bad_counts.get(name, 0), **by_name.get(name, empty)}
        if name in categorical:
            row.update(missing=int(missing_categories[name]), nan=0, pos_inf=0, neg_inf=0)
        missing = (row["missing"] or 0) + (row["nan"] or 0)
        rate = missing / df.height if df.height else 0.0
        row["missing_rate"] = rate
        row["missing_excess"] = rate - contract.policy_of(name, name in categorical)[1]
        rows.append(row)
    profile_schema = {"feature": pl.String, "dtype": pl.String, "is_numeric": pl.Boolean, "is_categorical": pl.Boolean,
                      "bad_values": pl.Int64, "missing": pl.Int64, "nan": pl.Int64, "pos_inf": pl.Int64,
                      "neg_inf": pl.Int64, "max_abs": pl.Float64, "missing_rate": pl.Float64,
                      "missing_excess": pl.Float64}
    profile = pl.DataFrame(rows, schema=profile_schema, orient="row")
    return profile.with_columns(infinite=pl.col("pos_inf") + pl.col("neg_inf"),
                                usable=pl.col("is_numeric") | pl.col("is_categorical"))


def _bad_value_counts(df: pl.DataFrame, columns: list[str]) -> dict[str, int]:
    """For non-numeric columns: how many non-empty cells do not parse as a number."""
    if not columns or not df.height:
        return {name: 0 for name in columns}
    row = df.select(
        [(pl.col(name).is_not_null() & pl.col(name).cast(pl.String).str.strip_chars()
          .cast(pl.Float64, strict=False).is_null()).sum().alias(name) for name in columns]
    ).row(0, named=True)
    return {name: int(row[name]) for name in columns}


def _row_frame(df: pl.DataFrame, contract: DatasetContract) -> "pd.DataFrame":
    """The narrow row-level frame GE sees: row number, and label/id as strings when present."""
    present = [name for name in (contract.label_column, contract.id_column) if name in df.columns]
    narrow = df.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("__row__"), *[pl.col(n).cast(pl.String) for n in present])
    return narrow.to_pandas()


def build_expectations(contract: DatasetContract, columns: list[str]) -> tuple[list[Any], list[Any]]:
    """The GE suite for a file with these columns: (row-level expectations, profile expectations).

    Every expectation carries ``meta={"check": <contract check name>}``. Expectations on the
    label or id column are only added when the column exists; a missing label is reported
    once, by ``required_columns``, instead of as a cascade of errors.
    """
    import great_expectations as gx  # lazy: ~2 s import

    E = gx.expectations
    label, sid = contract.label_column, contract.id_column
    rows = [
        E.ExpectColumnToExist(column=label if contract.labelled else sid, meta={"check": "required_columns"}),
        E.ExpectTableRowCountToBeBetween(min_value=contract.min_rows if contract.labelled else 1,
                                         max_value=contract.max_rows, meta={"check": "row_count"}),
    ]
    if contract.labelled and label in columns:
        rows += [E.ExpectColumnValuesToNotBeNull(column=label, meta={"check": "missing_labels"})]
        if contract.classes:
            rows += [E.ExpectColumnValuesToBeInSet(column=label, value_set=list(contract.classes),
                                                   meta={"check": "label_classes"})]
    if sid in columns:
        rows += [
            E.ExpectColumnValuesToNotBeNull(column=sid, meta={"check": "missing_sample_id"}),
            E.ExpectColumnValuesToBeUnique(column=sid, meta={"check": "unique_sample_id"}),
        ]
    profile = [
        # One profile row per feature column, so the table row count is the feature count.
        E.ExpectTableRowCountToBeBetween(min_value=1, max_value=contract.max_feature_columns,
                                         meta={"check": "feature_columns"}),
        E.ExpectColumnValuesToBeInSet(column="usable", value_set=[True], meta={"check": "numeric_features"}),
        E.ExpectColumnValuesToBeBetween(column="infinite", min_value=0, max_value=0, meta={"check": "finite_values"}),
        E.ExpectColumnValuesToBeBetween(column="missing_excess", max_value=0.0, meta={"check": "missing_values"}),
        E.ExpectColumnValuesToBeBetween(column="max_abs", min_value=0, max_value=contract.max_abs_value,
                                        meta={"check": "value_range"}),
    ]
    return rows, profile


def _run_suite(name: str, frame: "pd.DataFrame", expectations: list[Any], result_format: dict | str) -> list[Any]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # A fresh ephemeral context per call (~4 ms): nothing is shared between validations or
    # threads. In-memory stores, no data-docs site (GE would otherwise reserve a temporary
    # directory per context), no progress bars in Dagster's logs, no analytics.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(f"{name}_asset")
        .add_batch_definition_whole_dataframe(f"{name}_batch")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=f"{name}_contract", expectations=expectations)
    return list(batch.validate(suite, result_format=result_format).results)


def validate_contract(df: pl.DataFrame, contract: DatasetContract = DatasetContract(), *,
                      categorical: list[str] | None = None) -> ValidationReport:
    """Validate a parsed landing table against the contract with Great Expectations 1.x.

    Checks (each a contract check name): ``required_columns`` (label present),
    ``feature_columns`` (1..max_feature_columns), ``numeric_features`` (numeric or categorical),
    ``finite_values`` (no +-inf), ``missing_values`` (each column's missing share within its
    policy), ``value_range`` (|value| <= max_abs_value), ``missing_labels``, ``label_classes``
    and ``numeric_target`` (:func:`target_violations`; declared classes),
    ``missing_sample_id`` and ``unique_sample_id`` (when the id column exists) and
    ``row_count`` (min_rows..max_rows). Never raises for bad data: see the report.
    Accepts a polars or pandas DataFrame. ``categorical`` defaults to :func:`categorical_columns`.
    """
    if not isinstance(df, pl.DataFrame):
        df = pl.from_pandas(df)
    profile = feature_profile(df, contract, categorical)
    row_expectations, profile_expectations = build_expectations(contract, df.columns)
    results = _run_suite("rows", _row_frame(df, contract), row_expectations, "SUMMARY")
    results += _run_suite(
        "features", profile.to_pandas(), profile_expectations,
        # COMPLETE on the profile (at most max_feature_columns rows) so GE names every column.
        {"result_format": "COMPLETE", "unexpected_index_column_names": ["feature"]},
    )
    failed: list[str] = []
    reasons: list[str] = []
    details: dict[str, Any] = {}
    if not contract.labelled and contract.label_column in df.columns:
        failed.append("unexpected_label")
        reasons.append(f"a scoring file has no {contract.label_column!r} column (labels arriving later go to the "
                       "labels zone); drop it or land the file as training data")
        details["unexpected_label"] = {"column": contract.label_column}
    for result in results:
        check = result.expectation_config.meta["check"]
        if result.success or check in failed:
            continue
        reason, detail = _explain(check, result, df, profile, contract)
        failed.append(check)
        reasons.append(reason)
        details[check] = detail
    if contract.labelled and contract.label_column in df.columns:
        for check, reason, detail in target_violations(df[contract.label_column], contract):
            if check not in failed:
                failed.append(check)
                reasons.append(reason)
                details[check] = detail
    return ValidationReport(
        success=not failed,
        failed_checks=failed,
        reasons=reasons,
        evaluated_expectations=len(results),
        successful_expectations=sum(1 for result in results if result.success),
        n_rows=df.height,
        n_feature_columns=profile.height,
        contract_fingerprint=contract.fingerprint(),
        details=details,
    )


def _raised_exception(result: Any) -> str:
    """GE's exception message for a result, if computing it raised ('' otherwise).

    ``exception_info`` is either one info dict or a dict of them keyed by metric.
    """
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return "; ".join(str(i.get("exception_message")) for i in infos if i.get("raised_exception"))


def _flagged_features(result: Any) -> list[str]:
    return [item["feature"] for item in (result.result or {}).get("unexpected_index_list") or []]


@dataclass(frozen=True)
class _FailedCheck:
    """A failed expectation and the table it ran on: everything its reason may name."""

    result: Any  # GE's ExpectationValidationResult
    df: pl.DataFrame  # the landing table
    profile: pl.DataFrame  # feature_profile(df): one row per feature column
    contract: DatasetContract


def _observed_value(result: Any) -> Any:
    """GE's ``observed_value``, as a plain Python value so details stay JSON-safe."""
    observed = (result.result or {}).get("observed_value")
    if hasattr(observed, "item"):  # numpy scalar
        observed = observed.item()
    return observed


def _explain(check: str, result: Any, df: pl.DataFrame, profile: pl.DataFrame,
             contract: DatasetContract) -> tuple[str, dict[str, Any]]:
    """One human sentence (and JSON-safe details) for a failed expectation."""
    error = _raised_exception(result)
    if error and check != "required_columns":
        # GE could not compute the metric: report it rather than guess what the data holds.
        return f"the {check} check could not be evaluated: {redact_message(error)}", {"exception": error}
    explainer = _EXPLAINERS.get(check)
    if explainer is None:
        return f"{check} failed (observed {sample(_observed_value(result))})", {}
    return explainer(_FailedCheck(result=result, df=df, profile=profile, contract=contract))


def _explain_required_columns(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    contract, df = failed.contract, failed.df
    required = contract.label_column if contract.labelled else contract.id_column
    hint = (f"; name the target column {required!r}, or declare `target:` in the dataset contract file (dataset.yaml)"
            if contract.labelled else "")
    return (f"required column {required!r} is missing; columns found: {quote_samples(df.columns)}{hint}",
            {"missing": [required], "columns": df.columns[:100]})


def _explain_row_count(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    n_rows = failed.df.height
    return (f"{n_rows} data rows; the contract needs {failed.contract.min_rows}..{failed.contract.max_rows}",
            {"n_rows": n_rows})


def _explain_feature_columns(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    n = failed.profile.height
    if n == 0:
        return (f"no feature columns: only {quote_samples(failed.df.columns)}; at least one numeric feature is required",
                {"n_feature_columns": 0})
    return (f"{n} feature columns exceed the contract's maximum of {failed.contract.max_feature_columns}",
            {"n_feature_columns": n})


def _explain_numeric_features(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    names = _flagged_features(failed.result)
    parts = [_describe_non_numeric(failed.df, name) for name in names[:_EXAMPLES]]
    more = f"; and {len(names) - _EXAMPLES} more column(s)" if len(names) > _EXAMPLES else ""
    return (f"{len(names)} feature column(s) are not numeric: " + "; ".join(parts) + more,
            {"columns": names})


def _non_finite_kinds(profile_row: dict[str, Any]) -> str:
    """'3 missing, 1 NaN' for one feature_profile row (kinds with a zero count left out)."""
    kinds = [f"{profile_row[k]} {word}" for k, word in
             (("missing", "missing"), ("nan", "NaN"), ("pos_inf", "+inf"), ("neg_inf", "-inf")) if profile_row[k]]
    return ", ".join(kinds)


def _explain_finite_values(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    names = _flagged_features(failed.result)
    flagged = failed.profile.filter(pl.col("feature").is_in(names))
    parts = [f"{sample(row['feature'])!r} ({_non_finite_kinds(row)})"
             for row in flagged.head(_EXAMPLES).iter_rows(named=True)]
    more = f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else ""
    total = int(flagged["infinite"].sum())
    return (f"{total} infinite value(s) in {len(names)} feature column(s): " + ", ".join(parts) + more,
            {"columns": names, "infinite_values": total})


def _explain_missing_values(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    names = _flagged_features(failed.result)
    flagged = failed.profile.filter(pl.col("feature").is_in(names)).sort("missing_rate", descending=True)
    parts = [f"{sample(row['feature'])!r} ({row['missing_rate']:.0%} missing, allowed "
             f"{row['missing_rate'] - row['missing_excess']:.0%})" for row in flagged.head(_EXAMPLES).iter_rows(named=True)]
    more = f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else ""
    return (f"{len(names)} feature column(s) miss more values than the dataset's missing-value policy allows: "
            + ", ".join(parts) + more + "; raise max_missing_rate in the dataset contract file to impute them",
            {"columns": names, "missing_rate": {r["feature"]: r["missing_rate"] for r in flagged.iter_rows(named=True)}})


def _explain_value_range(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    names = _flagged_features(failed.result)
    flagged = failed.profile.filter(pl.col("feature").is_in(names)).sort("max_abs", descending=True)
    parts = [f"{sample(row['feature'])!r} (max |value| {row['max_abs']:.3g})"
             for row in flagged.head(_EXAMPLES).iter_rows(named=True)]
    more = f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else ""
    return (f"{len(names)} feature column(s) have |value| above {failed.contract.max_abs_value:g}: "
            + ", ".join(parts) + more,
            {"columns": names, "max_abs": {r["feature"]: r["max_abs"] for r in flagged.iter_rows(named=True)}})


def _explain_missing_labels(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    label = failed.contract.label_column
    count = int(failed.df[label].null_count())
    return (f"{count} row(s) have no {label!r} value", {"missing_labels": count})


def _explain_label_classes(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    label, contract = failed.contract.label_column, failed.contract
    classes = sorted(failed.df[label].drop_nulls().cast(pl.String).unique().to_list())
    strangers = [value for value in classes if value not in contract.classes]
    return (f"{label!r} holds {len(strangers)} value(s) outside the declared classes "
            f"({quote_samples(list(contract.classes))}): {quote_samples(strangers)}",
            {"unexpected_labels": strangers[:100], "classes": list(contract.classes)})


def _explain_missing_sample_id(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    sid = failed.contract.id_column
    count = int(failed.df[sid].null_count())
    return (f"{count} row(s) have an empty {sid!r}", {"missing_sample_ids": count})


def _explain_unique_sample_id(failed: _FailedCheck) -> tuple[str, dict[str, Any]]:
    sid = failed.contract.id_column
    ids = failed.df[sid].cast(pl.String)
    counts = ids.drop_nulls().value_counts().filter(pl.col("count") > 1).sort("count", descending=True)
    duplicated = counts[sid].to_list() if sid in counts.columns else counts[:, 0].to_list()
    return (f"{len(duplicated)} {sid!r} value(s) occur more than once, e.g. {quote_samples(duplicated)}",
            {"duplicated_ids": duplicated[:100], "n_duplicated": len(duplicated)})


# The check names build_expectations gives its expectations -> the explainer of a failure.
_EXPLAINERS = {
    "required_columns": _explain_required_columns,
    "row_count": _explain_row_count,
    "feature_columns": _explain_feature_columns,
    "numeric_features": _explain_numeric_features,
    "finite_values": _explain_finite_values,
    "missing_values": _explain_missing_values,
    "value_range": _explain_value_range,
    "missing_labels": _explain_missing_labels,
    "label_classes": _explain_label_classes,
    "missing_sample_id": _explain_missing_sample_id,
    "unique_sample_id": _explain_unique_sample_id,
}


def _describe_non_numeric(df: pl.DataFrame, name: str) -> str:
    """'f2' has 1 non-number(s), e.g. 'abc' at data row 7 / 'comment' is a text column."""
    column = df[name]
    if column.dtype != pl.String:
        return f"{sample(name)!r} has type {column.dtype}"
    text = column.str.strip_chars()
    bad = text.is_not_null() & text.cast(pl.Float64, strict=False).is_null()
    n_bad = int(bad.sum())
    n_filled = int(text.is_not_null().sum())
    positions = np.flatnonzero(bad.to_numpy())
    examples = [sample(value) for value in text.filter(bad).unique(maintain_order=True).head(3).to_list()]
    if n_bad == 0:
        # Parquet can store numbers as text: the type itself is out of contract.
        return f"{sample(name)!r} holds numbers stored as {column.dtype}; the contract needs a numeric type"
    if n_bad == n_filled:
        return (f"{sample(name)!r} is a text column (e.g. {quote_samples(examples)}) with too many distinct values to "
                "be inferred categorical; declare it under `categorical:` in the dataset contract file, or drop it")
    where = ", ".join(str(int(i) + 1) for i in positions[:3])
    return f"{sample(name)!r} has {n_bad} non-number value(s), e.g. {quote_samples(examples)} at data row(s) {where}"


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------


def derive_sample_ids(labels: list[str], features: np.ndarray, feature_names: list[str],
                      categories: list[list[str | None]] | None = None, category_names: list[str] | None = None) -> list[str]:
    """Content ids for rows without a ``sample_id``: :func:`row_hash` of each row.

    Features (and categories) are hashed in sorted column-name order, so the same row in another
    file (columns in another order, written by another tool) gets the same id. Identical rows in
    one file are distinct observations (a table of a few categories repeats rows all the time):
    the k-th repeat of a row's content gets ``<hash>~k``, so re-landing the same rows gives the
    same ids and every row of a file is kept.
    """
    order = np.argsort(np.asarray(feature_names, dtype=object), kind="stable")
    canonical = np.ascontiguousarray(features[:, order], dtype=np.float64)
    if not category_names:
        hashes = [row_hash(label, row) for label, row in zip(labels, canonical)]
    else:
        category_order = np.argsort(np.asarray(category_names, dtype=object), kind="stable")
        hashes = [row_hash(label, row, [values[i] for i in category_order])
                  for label, row, values in zip(labels, canonical, categories)]
    seen: dict[str, int] = {}
    ids = []
    for digest in hashes:
        repeat = seen.get(digest, 0)
        seen[digest] = repeat + 1
        ids.append(digest if repeat == 0 else f"{digest}~{repeat}")
    return ids


def to_landing_table(df: pl.DataFrame, contract: DatasetContract = DatasetContract(),
                     categorical: list[str] | None = None) -> LandingTable:
    """Convert a table that passed :func:`validate_contract` to ids, string labels, float64 numeric
    features (NaN where missing) and text categories (None where missing).

    Ids come from the id column when present (as strings), otherwise from
    :func:`derive_sample_ids`.
    """
    categorical = categorical_columns(df, contract) if categorical is None else categorical
    feature_names = [name for name in contract.feature_columns(df.columns) if name not in categorical]
    features = df.select(pl.col(feature_names).cast(pl.Float64).fill_null(float("nan"))).to_numpy()
    features = features.astype(np.float64, copy=False).reshape(df.height, len(feature_names))
    categories = (df.select(pl.col(categorical).cast(pl.String).str.strip_chars()).rows() if categorical
                  else [[] for _ in range(df.height)])
    categories = [list(row) for row in categories]
    labels = df[contract.label_column].cast(pl.String).str.strip_chars().to_list() if contract.labelled else []
    if contract.id_column in df.columns:
        sample_ids = df[contract.id_column].cast(pl.String).to_list()
    else:
        sample_ids = derive_sample_ids(labels, features, feature_names, categories, categorical)
    return LandingTable(sample_ids=sample_ids, labels=labels, feature_names=feature_names,
                        features=np.ascontiguousarray(features), category_names=list(categorical),
                        categories=categories)


def load_landing_file(
    path: str | os.PathLike[str], contract: DatasetContract = DatasetContract()
) -> tuple[LandingTable, ValidationReport]:
    """Read, validate and convert one landing file.

    Raises :class:`ContractViolation` when parsing fails (its own check) or when any
    contract check fails (the first failed check; all reasons joined by "; "; details hold
    the report's metadata and per-check details).
    """
    parsed = read_landing_file(path, contract)
    if contract.labelled and contract.label_column in parsed.frame.columns:
        refuse_non_finite_labels(parsed.frame[contract.label_column].drop_nulls().cast(pl.String).unique().to_list())
    categorical = categorical_columns(parsed.frame, contract)  # once: the validation and the conversion agree
    report = replace(validate_contract(parsed.frame, contract, categorical=categorical),
                     blank_lines_skipped=parsed.blank_lines_skipped)
    if not report.success:
        raise ContractViolation(
            report.failed_checks[0],
            "; ".join(report.reasons),
            {**report.to_metadata(), "checks": report.details},
        )
    return to_landing_table(parsed.frame, contract, categorical), report


def _is_non_finite_number(text: str) -> bool:
    """Whether ``text`` reads as NaN or an infinity ("nan", "inf", "-Infinity", "NaN"...)."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def refuse_non_finite_labels(labels: list[str]) -> None:
    """Raise ``ContractViolation`` ("label_classes") when a label reads as NaN or an infinity:
    a parser or a spreadsheet wrote a missing value, and it must never become a class."""
    not_finite = sorted({value for value in labels if _is_non_finite_number(value)})
    if not_finite:
        raise ContractViolation("label_classes", f"label(s) {quote_samples(not_finite)} are not finite: NaN and "
                                "infinity are never classes", {"unexpected_labels": not_finite[:100]})


def _numbers(values: pl.Series) -> pl.Series:
    """``values`` read as Float64 (text stripped); null where a value is not a number."""
    return values.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def target_violations(target: pl.Series, contract: DatasetContract) -> list[tuple[str, str, dict[str, Any]]]:
    """(check, reason, details) for a file's target column against the declared task.

    Regression needs every target to read as a finite number (``numeric_target``). Declared
    classification allows at most ``max_file_classes`` distinct labels in one file; a file holding
    only some of the classes is valid (the class count is judged on the training set). With
    ``task`` auto, a text target with more than ``max_classes`` distinct values is neither a
    class list nor a number (``label_classes``).
    """
    values = target.drop_nulls()
    label = contract.label_column
    numbers = _numbers(values)
    if contract.task == "regression":
        bad = values.filter(numbers.is_null() | ~numbers.is_finite()).cast(pl.String).unique().sort().to_list()
        return [("numeric_target", f"the regression target {label!r} holds {len(bad)} value(s) that are not finite "
                 f"numbers: {quote_samples(bad)}", {"bad_targets": bad[:100]})] if bad else []
    distinct = values.cast(pl.String).n_unique()
    limit = contract.max_file_classes
    if contract.task in ("binary", "multiclass") and distinct > limit:
        return [("label_classes", f"{label!r} has {distinct} distinct values; the declared {contract.task} task allows "
                 f"at most {limit} classes", {"n_classes": distinct})]
    if contract.task == "auto" and numbers.null_count() > 0 and distinct > contract.max_classes:
        return [("label_classes", f"{label!r} has {distinct} distinct text values: more than max_classes "
                 f"({contract.max_classes}) classes and not numbers; declare the task and classes in the dataset "
                 "contract file", {"n_classes": distinct})]
    return []


def load_labels_file(path: str | os.PathLike[str], contract: DatasetContract = DatasetContract()) -> LandingTable:
    """Labels of rows scored earlier: a CSV or Parquet file with ``sample_id`` and ``label`` columns
    (others are ignored), no empty cell, each sample id once. Raises :class:`ContractViolation`."""
    frame = read_landing_file(path, contract).frame
    sid, label = contract.id_column, contract.label_column
    missing = [name for name in (sid, label) if name not in frame.columns]
    if missing:
        raise ContractViolation("required_columns", f"a labels file needs {sid!r} and {label!r}; missing {missing}, "
                                f"columns found: {quote_samples(frame.columns)}", {"missing": missing})
    ids, labels = frame[sid].cast(pl.String), frame[label].cast(pl.String)
    empty = int(ids.is_null().sum() + labels.is_null().sum())
    if empty:
        raise ContractViolation("missing_labels", f"{empty} empty {sid!r} or {label!r} cell(s)", {"empty": empty})
    duplicated = ids.filter(ids.is_duplicated()).unique().to_list()
    if duplicated:
        raise ContractViolation("unique_sample_id", f"{len(duplicated)} {sid!r} value(s) occur more than once, "
                                f"e.g. {quote_samples(sorted(duplicated))}", {"duplicated_ids": sorted(duplicated)[:100]})
    refuse_non_finite_labels(labels.to_list())
    return LandingTable(sample_ids=ids.to_list(), labels=labels.to_list(), feature_names=[],
                        features=np.empty((frame.height, 0)))
