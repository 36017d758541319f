"""Quarantine keeps every byte and says why; partition keys are safe for any file name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hybrid_assets.common.partitions import safe_partition_key
from hybrid_resources.data.contract import (
    ContractViolation,
    file_sha256,
    load_landing_file,
)
from hybrid_resources.data.quarantine import (
    SIDECAR_SUFFIX,
    quarantine_file,
    read_sidecar,
)
from tests.bad_files import AWKWARD_NAME_WRITERS, BAD_FILE_WRITERS


@pytest.mark.parametrize("name", ["plain.csv", "with space.csv", "données.csv", "日本語.csv", "..csv", "a..b.csv"])
def test_quarantine_keeps_the_bytes_and_gives_a_reason(tmp_path, name):
    landing, quarantine = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    original = landing / name
    original.write_bytes(b"\xff\xfe some bytes \x00")
    digest = file_sha256(original)

    record = quarantine_file(original, quarantine, check="parse", reason="not a CSV", details={"x": 1})

    assert not original.exists()
    kept = Path(record.quarantined_path)
    assert kept.parent == quarantine and kept.name == name and file_sha256(kept) == digest
    sidecar = json.loads(Path(record.sidecar_path).read_text(encoding="utf-8"))
    assert Path(record.sidecar_path).name == name + SIDECAR_SUFFIX
    assert sidecar["reason"] == "not a CSV" and sidecar["check"] == "parse"
    assert sidecar["file_hash"] == digest and sidecar["original_name"] == name
    assert sidecar["details"] == {"x": 1} and sidecar["quarantined_at"].endswith("+00:00")
    assert read_sidecar(kept) == sidecar
    assert record.to_dict()["file_hash"] == digest
    assert not [p for p in quarantine.iterdir() if p.name.endswith((".copying", ".tmp"))]  # no temporaries left


@pytest.mark.parametrize("case", sorted(BAD_FILE_WRITERS))
def test_every_bad_file_goes_to_quarantine_with_zero_bytes_lost(tmp_path, case):
    landing, quarantine = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    path = BAD_FILE_WRITERS[case][0](landing)
    content = path.read_bytes()
    with pytest.raises(ContractViolation) as caught:
        load_landing_file(path)
    violation = caught.value
    record = quarantine_file(path, quarantine, check=violation.check, reason=violation.reason,
                             details=violation.details)
    assert not path.exists()
    assert Path(record.quarantined_path).read_bytes() == content
    sidecar = read_sidecar(record.quarantined_path)
    assert sidecar["check"] == BAD_FILE_WRITERS[case][1] and sidecar["reason"] == violation.reason


@pytest.mark.parametrize("case", sorted(AWKWARD_NAME_WRITERS))
def test_awkward_names_load_and_quarantine_safely(tmp_path, case):
    landing, quarantine = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    path = AWKWARD_NAME_WRITERS[case](landing)
    table, _ = load_landing_file(path)  # the name does not matter to the contract
    assert table.n_rows() > 0
    key = safe_partition_key(path.name)
    assert (landing / key).resolve().parent == landing.resolve()
    record = quarantine_file(path, quarantine, check="manual", reason="test")
    assert Path(record.quarantined_path).parent == quarantine
    assert Path(record.quarantined_path).name == path.name


def test_a_second_file_with_the_same_name_does_not_overwrite_the_first(tmp_path):
    quarantine = tmp_path / "q"
    for content in (b"first", b"second", b"third"):
        path = tmp_path / "same.csv"
        path.write_bytes(content)
        quarantine_file(path, quarantine, check="parse", reason="bad")
    files = [p for p in quarantine.iterdir() if not p.name.endswith(SIDECAR_SUFFIX)]
    assert sorted(p.read_bytes() for p in files) == [b"first", b"second", b"third"]
    assert all(p.with_name(p.name + SIDECAR_SUFFIX).exists() for p in files)
    assert (quarantine / "same.csv").read_bytes() == b"first"


def test_a_retry_after_a_crash_reuses_the_verified_copy(tmp_path):
    quarantine = tmp_path / "q"
    quarantine.mkdir()
    path = tmp_path / "bad.csv"
    path.write_bytes(b"same bytes")
    shutil.copyfile(path, quarantine / "bad.csv")  # a crash after the copy, before the unlink
    record = quarantine_file(path, quarantine, check="parse", reason="bad")
    assert Path(record.quarantined_path) == quarantine / "bad.csv" and not path.exists()
    assert sorted(p.name for p in quarantine.iterdir()) == ["bad.csv", "bad.csv" + SIDECAR_SUFFIX]


def test_bytes_other_than_the_judged_ones_are_not_quarantined_and_the_original_stays(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"precious")
    judged = file_sha256(path)
    path.write_bytes(b"rewritten after it was judged")
    with pytest.raises(OSError, match="does not match"):
        quarantine_file(path, tmp_path / "q", check="parse", reason="bad", expected_hash=judged)
    assert path.read_bytes() == b"rewritten after it was judged"
    assert list((tmp_path / "q").iterdir()) == []  # no copy, no temporary, no sidecar
