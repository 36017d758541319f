"""Partitions: one dynamic partition per file of each zone (training, scoring, labels), keyed by its name."""

import hashlib
import os
import re
import unicodedata

from dagster import DynamicPartitionsDefinition

landing_files_partitions = DynamicPartitionsDefinition(name="landing_files")
scoring_files_partitions = DynamicPartitionsDefinition(name="scoring_files")
labels_files_partitions = DynamicPartitionsDefinition(name="labels_files")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHARS = 8
_LOOKS_HASHED = re.compile(rf"-[0-9a-f]{{{_HASH_CHARS}}}$")  # what a changed name's key ends with


def safe_partition_key(file_name: str) -> str:
    """A readable, deterministic Dagster partition key for a zone file name; distinct names get
    distinct keys.

    Accents are folded to ASCII, runs of other characters (spaces, '/', non-Latin text, bytes
    that are not UTF-8) become '_', and leading dots are dropped, so '..' can never climb out of
    a folder when the key is used in a path. A name that needed none of this is its own key,
    unless it ends like a changed name's key ('-' and 8 hex digits). Every other name gets
    '-' and 8 hex characters of the SHA-256 of its bytes (``os.fsencode``) appended.

    So the key of an unchanged name never ends in '-' + 8 hex digits and every other key does:
    two names share a key only if they fold alike and their hashes share 32 bits.

    >>> safe_partition_key("batch 1.csv")
    'batch_1.csv-4bca0352'
    >>> safe_partition_key("batch_1.csv")
    'batch_1.csv'
    >>> safe_partition_key("batch_1.csv-4bca0352")
    'batch_1.csv-4bca0352-cd60ca4d'
    """
    folded = unicodedata.normalize("NFKD", file_name).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", folded).lstrip(".")
    cleaned = cleaned.replace("..", "_")[:120] or "file"
    if cleaned == file_name and not _LOOKS_HASHED.search(cleaned):
        return cleaned
    return f"{cleaned}-{hashlib.sha256(os.fsencode(file_name)).hexdigest()[:_HASH_CHARS]}"
