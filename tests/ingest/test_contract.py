"""The dataset contract on real files: every bad case gets a clear reason; good files load."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from hybrid_resources.data.contract import (
    to_landing_table,
    ContractViolation,
    DatasetContract,
    derive_sample_ids,
    feature_profile,
    load_labels_file,
    load_landing_file,
    read_landing_file,
    validate_contract,
)
from tests.bad_files import (
    BAD_FILE_WRITERS,
    GOOD_FILE_WRITERS,
    good_frame,
    write_good_csv,
    write_record_of_empty_fields,
    write_trailing_blank_lines,
)


def _violation(path, contract: DatasetContract = DatasetContract()) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        load_landing_file(path, contract)
    return caught.value


# Words each bad file's reason must contain: what is wrong, and where.
REASON_WORDS = {
    "empty": ["empty"],
    "header_only": ["no data rows"],
    "wrong_delimiter": ["semicolon", "comma-separated"],
    "missing_label": ["'label'", "missing"],
    "extra_text_column": ["'comment'", "text column"],
    "non_numeric_value": ["'abc'", "'f2'", "row(s) 7"],
    "nan_and_inf": ["'f1'", "NaN", "+inf", "-inf"],
    "duplicate_sample_id": ["s00000"],
    "absurd_values": ["'f0'", "1e+300"],
    "non_utf8": ["UTF-8", "line 2"],
    "binary_garbage": ["binary"],
    "wrong_parquet_schema": ["'label'"],
    "record_of_empty_fields": ["1 row(s) have no 'label'", "1 row(s) have an empty 'sample_id'"],
}


def test_every_bad_file_case_has_its_expected_reason():
    assert set(REASON_WORDS) == set(BAD_FILE_WRITERS)


@pytest.mark.parametrize("case", sorted(BAD_FILE_WRITERS))
def test_each_bad_file_is_rejected_by_the_right_check_with_a_reason_that_names_the_problem(tmp_path, case):
    writer, expected_check = BAD_FILE_WRITERS[case]
    path = writer(tmp_path)
    before = path.read_bytes()
    violation = _violation(path)
    assert violation.check == expected_check, violation.reason
    missing = [word for word in REASON_WORDS[case] if word not in violation.reason]
    assert not missing, (missing, violation.reason)
    json.dumps(violation.details)  # details travel to sidecars and metadata
    assert path.read_bytes() == before  # reading never consumes or alters the file


@pytest.mark.parametrize("case", sorted(GOOD_FILE_WRITERS))
def test_good_files_load(tmp_path, case):
    path = GOOD_FILE_WRITERS[case](tmp_path)
    table, report = load_landing_file(path)
    assert report.success and report.failed_checks == [] and report.reasons == []
    assert report.successful_expectations == report.evaluated_expectations > 0
    assert table.features.dtype == np.float64
    assert table.features.shape == (table.n_rows(), len(table.feature_names))
    assert 1 <= len(set(table.labels)) <= 3 and all(isinstance(label, str) for label in table.labels)
    assert len(set(table.sample_ids)) == table.n_rows()
    json.dumps(report.to_metadata())


@pytest.mark.parametrize("labels", [("0", "1"), ("B", "M"), (0, 1)])
def test_labels_come_back_as_strings_from_csv_and_parquet(tmp_path, labels):
    frame = good_frame(n_rows=30, labels=labels)
    frame.write_csv(tmp_path / "good.csv")
    frame.write_parquet(tmp_path / "good.parquet")
    for name in ("good.csv", "good.parquet"):
        table, _ = load_landing_file(tmp_path / name)
        assert set(table.labels) == {str(label) for label in labels}
        np.testing.assert_array_equal(table.features, frame.select(table.feature_names).to_numpy())


def test_sample_ids_are_kept_as_text(tmp_path):
    path = tmp_path / "zeros.csv"
    good_frame(n_rows=6).with_columns(pl.Series("sample_id", [f"{i:05d}" for i in range(6)])).write_csv(path)
    table, _ = load_landing_file(path)
    assert table.sample_ids[:2] == ["00000", "00001"]


def test_ids_are_derived_from_content_when_absent(tmp_path):
    path = write_good_csv(tmp_path, with_ids=False, name="no_ids.csv")
    table, _ = load_landing_file(path)
    assert len(set(table.sample_ids)) == table.n_rows()
    assert all(len(sid) == 16 and int(sid, 16) >= 0 for sid in table.sample_ids)
    # The same rows, columns reordered and stored as Parquet, get the same ids.
    frame = pl.read_csv(path)
    frame.select(list(reversed(frame.columns))).write_parquet(tmp_path / "reordered.parquet")
    again, _ = load_landing_file(tmp_path / "reordered.parquet")
    assert again.sample_ids == table.sample_ids


def test_derived_ids_depend_on_label_and_values_only():
    features = np.array([[1.0, -0.0], [1.0, 0.0], [1.0, 2.0]])
    ids = derive_sample_ids(["a", "a", "a"], features, ["x", "y"])
    assert ids[1] == ids[0] + "~1" and ids[2] != ids[0]  # -0.0 and 0.0 are the same value: a repeat, kept
    assert derive_sample_ids(["a", "a", "a"], features, ["x", "y"]) == ids  # the same rows, the same ids
    assert derive_sample_ids(["b"], features[:1], ["x", "y"]) != ids[:1]
    assert derive_sample_ids(["a"], features[:1, ::-1], ["y", "x"]) == ids[:1]


def test_several_failures_are_all_reported(tmp_path):
    frame = good_frame(n_rows=10).with_columns(
        pl.Series("label", [str(i % 3) for i in range(10)]), pl.lit("same").alias("sample_id"),
        pl.Series("note", [f"free text {i}" for i in range(10)]))
    frame.write_csv(tmp_path / "bad.csv")
    violation = _violation(tmp_path / "bad.csv", DatasetContract(task="binary"))
    failed = violation.details["failed_checks"]
    assert set(failed) == {"label_classes", "unique_sample_id", "numeric_features"}
    assert violation.check == failed[0]
    assert violation.reason.count("; ") >= 2 and "'note'" in violation.reason


def test_missing_labels_and_empty_ids_are_named(tmp_path):
    (tmp_path / "holes.csv").write_text(
        "sample_id,label,f0\na,0,1\nb,1,2\n,0,3\nd,,4\ne,1,5\n", encoding="utf-8")
    report = validate_contract(read_landing_file(tmp_path / "holes.csv").frame)
    assert set(report.failed_checks) == {"missing_labels", "missing_sample_id"}
    assert any("1 row(s) have no 'label'" in reason for reason in report.reasons)


def test_blank_lines_are_skipped_and_counted(tmp_path):
    path = write_trailing_blank_lines(tmp_path, n_rows=20)
    table, report = load_landing_file(path)
    assert table.n_rows() == 20 and report.n_rows == 20
    assert report.blank_lines_skipped == 4 and report.to_metadata()["blank_lines_skipped"] == 4
    # Blank lines in the middle too, and a quoted field holding a blank line is left alone.
    (tmp_path / "middle.csv").write_text(
        'sample_id,label,f0\na,0,1\n\n  \nb,1,2\n"c\n\nc",0,3\nd,1,4\n\n', encoding="utf-8")
    table, report = load_landing_file(tmp_path / "middle.csv")
    assert table.sample_ids == ["a", "b", "c\n\nc", "d"] and report.blank_lines_skipped == 3
    np.testing.assert_array_equal(table.features[:, 0], [1.0, 2.0, 3.0, 4.0])
    _, clean_report = load_landing_file(write_good_csv(tmp_path, n_rows=20, name="clean.csv"))
    assert clean_report.blank_lines_skipped == 0


def test_a_record_of_empty_fields_still_breaks_the_contract(tmp_path):
    violation = _violation(write_record_of_empty_fields(tmp_path))
    assert "missing_labels" in violation.details["failed_checks"]
    assert "finite_values" not in violation.details["failed_checks"]  # empty feature cells are missing values
    assert "1 row(s) have no 'label'" in violation.reason


def test_a_few_empty_cells_are_kept_as_missing_values_and_more_than_the_policy_allows_are_refused(tmp_path):
    (tmp_path / "gaps.csv").write_text("label,f0,f1\n0,1,\n1,2,nan\n0,3,4\n1,4,5\n", encoding="utf-8")
    frame = read_landing_file(tmp_path / "gaps.csv").frame
    assert validate_contract(frame).success  # 2 of 4 missing: within the default max rate 0.5
    table = to_landing_table(frame)
    assert np.isnan(table.features[:2, 1]).all() and not np.isnan(table.features[2:]).any()
    strict = DatasetContract(column_policies=(("f1", "median", 0.25),))
    report = validate_contract(frame, strict)
    assert report.failed_checks == ["missing_values"]
    assert "'f1' (50% missing, allowed 25%)" in report.reasons[0]


def test_the_contract_is_the_single_source_of_the_rules():
    frame = good_frame(n_rows=10)
    assert validate_contract(frame).success
    assert validate_contract(frame.to_pandas()).success  # pandas input is accepted too
    strict = DatasetContract(min_rows=20, max_abs_value=1.0, max_feature_columns=3)
    report = validate_contract(frame, strict)
    assert set(report.failed_checks) == {"row_count", "value_range", "feature_columns"}
    metadata = report.to_metadata()
    assert metadata["success"] is False and metadata["contract_fingerprint"] == strict.fingerprint()
    assert strict.fingerprint() != DatasetContract().fingerprint()
    json.dumps(metadata)
    assert validate_contract(frame.drop("sample_id"), DatasetContract(id_column="id")).success


def test_a_file_without_features_or_with_a_boolean_feature_is_out_of_contract():
    labels = pl.DataFrame({"label": ["0", "1"] * 3})
    assert validate_contract(labels).failed_checks == ["feature_columns"]
    flags = labels.with_columns(pl.Series("f0", [1.0] * 6), pl.Series("flag", [True, False] * 3))
    assert validate_contract(flags).success  # inferred categorical: two levels
    report = validate_contract(flags, DatasetContract(categorical=()))  # declared: no categorical column
    assert report.failed_checks == ["numeric_features"] and "'flag'" in report.reasons[0]


@pytest.mark.parametrize(
    ("name", "content", "check", "words"),
    [
        ("data.txt", b"label,f0\n0,1\n", "parse", ".csv, .parquet"),
        ("tabs.csv", b"label\tf0\tf1\n0\t1\t2\n1\t2\t3\n", "parse", "tab"),
        ("dupes.csv", b"label,f0,f0\n0,1,2\n", "duplicate_columns", "'f0'"),
        ("ragged.csv", b"label,f0\n0,1\n1,2,3\n", "parse", "comma-separated"),
        ("broken.parquet", b"PAR1 not really parquet", "parse", "Parquet"),
        ("parquet.csv", b"PAR1\x00\x01\x02", "parse", "Parquet"),
        ("blank.csv", b"\n\n  \n", "parse", "empty"),
    ],
)
def test_unreadable_files_raise_a_parse_violation(tmp_path, name, content, check, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ContractViolation) as caught:
        read_landing_file(tmp_path / name)
    assert caught.value.check == check and words in caught.value.reason, caught.value.reason


def test_utf8_with_bom_and_accents_in_ids_is_fine(tmp_path):
    text = "sample_id,label,f0\n" + "".join(f"café{i},{i % 2},{i}.5\n" for i in range(6))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    table, _ = load_landing_file(tmp_path / "bom.csv")
    assert table.sample_ids[0] == "café0" and table.feature_names == ["f0"]


def test_header_only_parquet_is_a_row_count_violation(tmp_path):
    good_frame().head(0).write_parquet(tmp_path / "empty.parquet")
    with pytest.raises(ContractViolation) as caught:
        read_landing_file(tmp_path / "empty.parquet")
    assert caught.value.check == "row_count"


def test_profile_has_one_row_per_feature_column():
    frame = good_frame(n_rows=8, n_features=3).with_columns(pl.lit("x").alias("note"))
    profile = feature_profile(frame)
    assert profile["feature"].to_list() == ["f0", "f1", "f2", "note"]
    assert profile["is_numeric"].to_list() == [True, True, True, False]
    assert profile["is_categorical"].to_list() == [False, False, False, True]  # one level: inferred categorical
    assert profile["infinite"].to_list()[:3] == [0, 0, 0] and profile["missing_rate"].to_list() == [0.0] * 4


def test_validation_evaluates_one_expectation_per_rule_whatever_the_width(tmp_path):
    # Per-column expectations cost ~7 ms each in GE (15 s for 1,000 columns); the suite validates a
    # profile instead, so its size does not grow with the file. Speed: bench/contract_bench.py.
    for n_features in (30, 1000):
        path = write_good_csv(tmp_path, n_rows=60, n_features=n_features, name=f"w{n_features}.csv")
        table, report = load_landing_file(path)
        assert report.success and table.features.shape == (60, n_features)
        assert report.evaluated_expectations == 10


def test_a_parquet_file_over_the_row_or_column_ceiling_is_refused_from_its_footer(tmp_path):
    good_frame(n_rows=20, n_features=3).write_parquet(tmp_path / "long.parquet")
    long = _violation(tmp_path / "long.parquet", DatasetContract(max_rows=10))
    assert long.check == "row_count" and "20 rows (its footer says)" in long.reason
    good_frame(n_rows=20, n_features=6).write_parquet(tmp_path / "wide.parquet")
    wide = _violation(tmp_path / "wide.parquet", DatasetContract(max_feature_columns=3))
    assert wide.check == "feature_columns" and "8 columns (its footer says)" in wide.reason
    table, _ = load_landing_file(tmp_path / "wide.parquet", DatasetContract(max_rows=20, max_feature_columns=6))
    assert table.n_rows() == 20  # at the ceilings is fine


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity"])
def test_nan_or_infinite_labels_are_never_classes(tmp_path, suffix, bad):
    frame = pl.DataFrame({"sample_id": [f"s{i}" for i in range(20)], "f0": [float(i) for i in range(20)],
                          "f1": [1.0] * 20, "label": [bad if i % 2 else "1" for i in range(20)]})
    path = tmp_path / f"labels.{suffix}"
    frame.write_csv(path) if suffix == "csv" else frame.write_parquet(path)
    for load in (load_landing_file, load_labels_file):
        with pytest.raises(ContractViolation) as refused:
            load(path)
        assert refused.value.check == "label_classes" and "never classes" in refused.value.reason
