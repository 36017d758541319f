"""Writers of landing files, good and bad, for contract, quarantine, pipeline and daemon tests.

``BAD_FILE_WRITERS`` maps a case name to (writer, the contract check expected to reject it);
``GOOD_FILE_WRITERS`` maps a case name to a writer of a file that must load;
``AWKWARD_NAME_WRITERS`` write a valid file under a name with spaces, unicode or '..'.
Every writer takes a folder and returns the path it wrote. Deterministic (fixed seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl


def good_frame(n_rows: int = 40, n_features: int = 5, seed: int = 0, with_ids: bool = True, id_offset: int = 0,
               labels: tuple = ("0", "1")) -> pl.DataFrame:
    """Two separable Gaussian blobs: f0..f{n-1}, label (alternating), sample_id s00000.. (optional)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_rows) % 2
    X = rng.normal(size=(n_rows, n_features)) + 2.0 * y[:, None]
    frame = pl.DataFrame(X, schema=[f"f{i}" for i in range(n_features)], orient="row")
    frame = frame.with_columns(pl.Series("label", [labels[v] for v in y]))
    if with_ids:
        frame = frame.with_columns(pl.Series("sample_id", [f"s{id_offset + i:05d}" for i in range(n_rows)]))
    return frame


def write_good_csv(folder: Path, n_rows: int = 40, n_features: int = 5, seed: int = 0, name: str = "good.csv",
                   with_ids: bool = True, id_offset: int = 0) -> Path:
    """A valid CSV landing file."""
    return _frame(folder, name, good_frame(n_rows, n_features, seed, with_ids, id_offset))


def _frame(folder: Path, name: str, frame: pl.DataFrame) -> Path:
    """Write ``frame`` as CSV, or as Parquet for a ``.parquet`` name."""
    path = Path(folder) / name
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return path


def _text(folder: Path, name: str, text: str) -> Path:
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


def write_empty(folder: Path) -> Path:
    return _text(folder, "empty.csv", "")


def write_header_only(folder: Path) -> Path:
    return _text(folder, "header_only.csv", "sample_id,label,f0,f1\n")


def write_wrong_delimiter(folder: Path) -> Path:
    return _text(folder, "semicolons.csv", "sample_id;label;f0;f1\n" + "".join(f"s{i};{i % 2};{i}.5;1.0\n" for i in range(10)))


def write_missing_label(folder: Path) -> Path:
    return _frame(folder, "no_label.csv", good_frame().drop("label"))


def write_one_class(folder: Path) -> Path:
    return _frame(folder, "one_class.csv", good_frame().with_columns(pl.lit("1").alias("label")))


def write_three_classes(folder: Path) -> Path:
    frame = good_frame(n_rows=30)
    return _frame(folder, "three_classes.csv", frame.with_columns(pl.Series("label", [str(i % 3) for i in range(30)])))


def write_extra_text_column(folder: Path) -> Path:
    """Free text (a different comment on every row): not a category, so not a feature either."""
    frame = good_frame()
    comments = [f"note number {i} looks fine" for i in range(frame.height)]
    return _frame(folder, "with_comments.csv", frame.with_columns(pl.Series("comment", comments)))


def write_non_numeric_value(folder: Path) -> Path:
    frame = good_frame().with_columns(pl.col("f2").cast(pl.String))
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 6).then(pl.lit("abc")).otherwise(pl.col("f2")).alias("f2"))
    return _frame(folder, "abc_value.csv", frame)


def write_nan_and_inf(folder: Path) -> Path:
    frame = good_frame()
    values = frame["f1"].to_numpy().copy()
    values[[1, 2, 3]] = [np.nan, np.inf, -np.inf]
    return _frame(folder, "nan_inf.csv", frame.with_columns(pl.Series("f1", values)))


def write_duplicate_ids(folder: Path) -> Path:
    repeated = pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("s00000")).otherwise(pl.col("sample_id"))
    return _frame(folder, "duplicate_ids.csv", good_frame().with_columns(repeated.alias("sample_id")))


def write_absurd_values(folder: Path) -> Path:
    frame = good_frame()
    values = frame["f0"].to_numpy().copy()
    values[4] = 1e300
    return _frame(folder, "absurd.csv", frame.with_columns(pl.Series("f0", values)))


def write_non_utf8(folder: Path) -> Path:
    path = Path(folder) / "latin1.csv"
    text = "sample_id,label,f0\n" + "".join(f"caf\u00e9{i},{i % 2},{i}.0\n" for i in range(10))
    path.write_bytes(text.encode("latin-1"))
    return path


def write_binary_garbage(folder: Path) -> Path:
    path = Path(folder) / "garbage.csv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    return path


def write_wrong_parquet_schema(folder: Path) -> Path:
    return _frame(folder, "wrong_schema.parquet", good_frame().rename({"label": "target"}))


def write_good_csv_without_ids(folder: Path) -> Path:
    return write_good_csv(folder, name="good_no_ids.csv", with_ids=False)


def write_good_parquet(folder: Path) -> Path:
    return _frame(folder, "good.parquet", good_frame(seed=1))


def write_string_labels(folder: Path) -> Path:
    return _frame(folder, "string_labels.csv", good_frame(seed=2, labels=("B", "M")))


def write_int_labels_parquet(folder: Path) -> Path:
    """Integer labels and integer-typed features in Parquet: both are in contract."""
    frame = good_frame(seed=3, labels=(0, 1)).with_columns(pl.col("f0").round(0).cast(pl.Int64))
    return _frame(folder, "int_labels.parquet", frame)


def write_wide_csv(folder: Path) -> Path:
    """1,000 numeric feature columns: valid, and must validate in well under a second."""
    return write_good_csv(folder, n_rows=60, n_features=1000, seed=4, name="wide.csv")


def write_name_with_spaces(folder: Path) -> Path:
    return write_good_csv(folder, name="batch 2024 final (1).csv", id_offset=1000)


def write_unicode_name(folder: Path) -> Path:
    return write_good_csv(folder, name="données_été_数据.csv", id_offset=2000)


def write_dotdot_name(folder: Path) -> Path:
    return write_good_csv(folder, name="..batch..v2...csv", id_offset=3000)


def write_trailing_blank_lines(folder: Path, name: str = "spreadsheet_export.csv", n_rows: int = 20) -> Path:
    """A valid CSV as spreadsheets export it: CRLF line ends, then blank and whitespace-only lines."""
    path = write_good_csv(folder, n_rows=n_rows, name=name)
    text = path.read_text().replace("\n", "\r\n")
    path.write_bytes((text + "\r\n\r\n   \r\n\t\r\n").encode())
    return path


def write_record_of_empty_fields(folder: Path) -> Path:
    """A valid CSV plus one record of empty fields (``,,,,``): a row, not a blank line."""
    path = write_good_csv(folder, name="empty_record.csv")
    columns = path.read_text().splitlines()[0].count(",")
    with path.open("a") as handle:
        handle.write("," * columns + "\n")
    return path


GOOD_FILE_WRITERS: dict[str, Callable[[Path], Path]] = {
    "csv_with_ids": write_good_csv,
    "csv_without_ids": write_good_csv_without_ids,
    "parquet": write_good_parquet,
    "string_labels": write_string_labels,
    "int_labels_parquet": write_int_labels_parquet,
    "wide_1000_columns": write_wide_csv,
    "trailing_blank_lines": write_trailing_blank_lines,
    "one_class_batch": write_one_class,  # a batch may hold some of the classes (judged on the training set)
    "three_classes": write_three_classes,  # multi-class
}

AWKWARD_NAME_WRITERS: dict[str, Callable[[Path], Path]] = {
    "spaces": write_name_with_spaces,
    "unicode": write_unicode_name,
    "dotdot": write_dotdot_name,
}


BAD_FILE_WRITERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (write_empty, "parse"),
    "header_only": (write_header_only, "row_count"),
    "wrong_delimiter": (write_wrong_delimiter, "parse"),
    "missing_label": (write_missing_label, "required_columns"),
    "extra_text_column": (write_extra_text_column, "numeric_features"),
    "non_numeric_value": (write_non_numeric_value, "numeric_features"),
    "nan_and_inf": (write_nan_and_inf, "finite_values"),
    "duplicate_sample_id": (write_duplicate_ids, "unique_sample_id"),
    "absurd_values": (write_absurd_values, "value_range"),
    "non_utf8": (write_non_utf8, "encoding"),
    "binary_garbage": (write_binary_garbage, "parse"),
    "wrong_parquet_schema": (write_wrong_parquet_schema, "required_columns"),
    "record_of_empty_fields": (write_record_of_empty_fields, "missing_labels"),
}
