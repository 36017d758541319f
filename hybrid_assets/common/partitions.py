"""Partitions: one dynamic partition per file of each zone (training, scoring, labels), keyed by its name."""

import hashlib
import re
import unicodedata

from dagster import DynamicPartitionsDefinition

landing_files_partitions = DynamicPartitionsDefinition(name="landing_files")
scoring_files_partitions = DynamicPartitionsDefinition(name="scoring_files")
labels_files_partitions = DynamicPartitionsDefinition(name="labels_files")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_partition_key(file_name: str) -> str:
    """A readable, deterministic Dagster partition key for a landing file name.

    Accents are folded to ASCII, runs of other characters (spaces, '/', non-Latin text)
    become '_', and leading dots are dropped, so '..' can never climb out of a folder when
    the key is used in a path. When anything was changed, 8 hex characters of the original
    name's hash are appended, so two names that fold alike keep distinct keys.

    >>> safe_partition_key("batch 1.csv")
    'batch_1.csv-4bca0352'
    >>> safe_partition_key("batch_1.csv")
    'batch_1.csv'
    """
    folded = unicodedata.normalize("NFKD", file_name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", folded).lstrip(".")
    cleaned = cleaned.replace("..", "_")[:120] or "file"
    if cleaned == file_name:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(file_name.encode()).hexdigest()[:8]}"
