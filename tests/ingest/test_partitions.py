"""Partition keys for landing files: safe in paths, accepted by Dagster, deterministic and distinct."""

from hybrid_assets.common.partitions import safe_partition_key

# Dagster refuses partition keys containing these (dagster/_core/definitions/partitions/utils/base.py).
DAGSTER_INVALID = ["...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0"]


def test_partition_keys_are_safe_deterministic_and_distinct():
    names = ["a b.csv", "a_b.csv", "a/b.csv", "../x.csv", "..", ".", "", "é.csv", "e.csv", "日本語.csv",
             "x...y.csv", "tab\there.csv", "new\nline.csv", "x" * 300 + ".csv"]
    keys = [safe_partition_key(n) for n in names]
    assert keys == [safe_partition_key(n) for n in names]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert key and "/" not in key and "\\" not in key and ".." not in key and not key.startswith(".")
        assert not any(bad in key for bad in DAGSTER_INVALID)
        assert key.isascii() and len(key) <= 130
    assert safe_partition_key("batch_1.csv") == "batch_1.csv"  # safe names are unchanged
    assert safe_partition_key("é.csv").startswith("e.csv-")  # readable: accents folded
    assert safe_partition_key("batch 1.csv") == "batch_1.csv-4bca0352"  # documented example
