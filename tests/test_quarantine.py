import json

import pytest

from hybrid_resources.contract import file_sha256
from hybrid_resources.quarantine import quarantine_file, safe_partition_key


@pytest.mark.parametrize("name", ["plain.csv", "with space.csv", "données.csv", "日本語.csv", "..csv", "a..b.csv"])
def test_quarantine_keeps_the_bytes_and_gives_a_reason(tmp_path, name):
    landing, quarantine = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    original = landing / name
    original.write_bytes(b"\xff\xfe some bytes \x00")
    digest = file_sha256(original)

    record = quarantine_file(original, quarantine, check="parse", reason="not a CSV", details={"x": 1})

    assert not original.exists()
    kept = quarantine / record.quarantined_path.split("/")[-1]
    assert kept.parent == quarantine and file_sha256(kept) == digest
    sidecar = json.loads((quarantine / record.sidecar_path.split("/")[-1]).read_text())
    assert sidecar["reason"] == "not a CSV" and sidecar["check"] == "parse"
    assert sidecar["file_hash"] == digest and sidecar["original_name"] == name
    assert sidecar["details"] == {"x": 1}


def test_a_second_file_with_the_same_name_does_not_overwrite_the_first(tmp_path):
    quarantine = tmp_path / "q"
    for content in (b"first", b"second"):
        path = tmp_path / "same.csv"
        path.write_bytes(content)
        quarantine_file(path, quarantine, check="parse", reason="bad")
    kept = sorted(p.read_bytes() for p in quarantine.iterdir() if not p.name.endswith(".reason.json"))
    assert kept == [b"first", b"second"]


def test_partition_keys_are_safe_deterministic_and_distinct():
    names = ["a b.csv", "a_b.csv", "a/b.csv", "../x.csv", "..", "é.csv", "e.csv"]
    keys = [safe_partition_key(n) for n in names]
    assert keys == [safe_partition_key(n) for n in names]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert "/" not in key and ".." not in key and not key.startswith(".")
    assert safe_partition_key("batch_1.csv") == "batch_1.csv"
