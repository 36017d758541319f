"""The dataset contract on real files: every bad case gets a clear reason; good files load."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

from hybrid_resources.contract import ContractViolation, DatasetContract, load_landing_file, validate_contract
from tests.bad_files import BAD_FILE_WRITERS, good_frame, write_good_csv


@pytest.mark.parametrize("case", sorted(BAD_FILE_WRITERS))
def test_each_bad_file_is_rejected_by_the_right_check(tmp_path, case):
    writer, expected_check = BAD_FILE_WRITERS[case]
    path = writer(tmp_path)
    with pytest.raises(ContractViolation) as violation:
        load_landing_file(path)
    assert violation.value.check == expected_check, violation.value.reason
    assert len(violation.value.reason) > 15
    assert path.exists()  # reading never consumes the file


def test_reasons_name_the_problem(tmp_path):
    def reason(case: str) -> str:
        with pytest.raises(ContractViolation) as violation:
            load_landing_file(BAD_FILE_WRITERS[case][0](tmp_path))
        return violation.value.reason

    assert "semicolon" in reason("wrong_delimiter")
    assert "'label'" in reason("missing_label")
    assert "'comment'" in reason("extra_text_column")
    assert "'abc'" in reason("non_numeric_value") and "'f2'" in reason("non_numeric_value")
    assert "NaN" in reason("nan_and_inf") and "+inf" in reason("nan_and_inf")
    assert "s00000" in reason("duplicate_sample_id")
    assert "UTF-8" in reason("non_utf8")
    assert "binary" in reason("binary_garbage")


@pytest.mark.parametrize("labels", [("0", "1"), ("B", "M")])
def test_good_csv_and_parquet_load(tmp_path, labels):
    frame = good_frame(n_rows=30, labels=labels)
    frame.write_csv(tmp_path / "good.csv")
    frame.write_parquet(tmp_path / "good.parquet")
    for name in ("good.csv", "good.parquet"):
        table, report = load_landing_file(tmp_path / name)
        assert report.success and table.n_rows() == 30
        assert set(table.labels) == set(labels)
        assert table.features.dtype == np.float64 and table.features.shape == (30, 5)


def test_ids_are_derived_from_content_when_absent(tmp_path):
    path = write_good_csv(tmp_path, with_ids=False, name="no_ids.csv")
    table, _ = load_landing_file(path)
    assert len(set(table.sample_ids)) == table.n_rows()
    # The same rows with columns in another order get the same ids.
    frame = pl.read_csv(path)
    frame.select(list(reversed(frame.columns))).write_csv(tmp_path / "reordered.csv")
    again, _ = load_landing_file(tmp_path / "reordered.csv")
    assert sorted(again.sample_ids) == sorted(table.sample_ids)


def test_a_very_wide_file_is_valid_and_validates_quickly(tmp_path):
    path = write_good_csv(tmp_path, n_rows=50, n_features=1000, name="wide.csv")
    load_landing_file(path)  # warm the GE import
    started = time.perf_counter()
    table, report = load_landing_file(path)
    assert report.success and table.features.shape == (50, 1000)
    # Not a timing assertion: GE evaluates a fixed number of expectations whatever the width.
    assert report.evaluated_expectations < 20
    assert time.perf_counter() - started >= 0


def test_the_contract_is_the_single_source_of_the_rules(tmp_path):
    frame = good_frame(n_rows=10)
    assert validate_contract(frame).success
    strict = DatasetContract(min_rows=20, max_abs_value=1.0)
    report = validate_contract(frame, strict)
    assert set(report.failed_checks) == {"row_count", "value_range"}
    assert report.to_metadata()["success"] is False
