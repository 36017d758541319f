"""How assets report what they produced: content-hash data versions and common metadata."""

from __future__ import annotations

from importlib import metadata as package_metadata
from typing import Any

from dagster import AssetKey, DataVersion, MetadataValue, Output

from hybrid_resources.data.artifacts import content_hash, read_artifact, recorded_base

_TRACKED_PACKAGES = ("dagster", "pennylane", "amazon-braket-pennylane-plugin", "numpy", "scikit-learn", "polars",
                     "duckdb", "great-expectations")


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour shapes the numbers (recorded for audits)."""
    versions = {}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def artifact_output(value: Any, metadata: dict[str, Any]) -> Output:
    """Wrap an artifact with its content hash as the Dagster data version, plus metadata: the
    asset's own entries first (what a reader looks for), then provenance (content hash, library versions)."""
    digest = content_hash(value)
    return Output(
        value,
        data_version=DataVersion(digest),
        metadata={**metadata, "content_hash": digest, "library_versions": MetadataValue.json(library_versions())},
    )


def latest_metadata(instance, asset: str) -> dict[str, Any]:
    """Plain values of the latest materialization's metadata of ``asset`` (empty if none)."""

    event = instance.get_latest_materialization_event(AssetKey(asset))
    if event is None:
        return {}
    return {key: getattr(value, "value", value) for key, value in event.asset_materialization.metadata.items()}


def recorded_artifact(asset: str, recorded: dict[str, Any]) -> Any | None:
    """The stored value the metadata of a materialization of ``asset`` (:func:`latest_metadata`)
    points at, or None when there is none or the file no longer holds what was recorded (content
    hash differs)."""
    base = recorded_base(recorded, asset.split("/"))
    try:
        value = read_artifact(base) if base else None
    except FileNotFoundError:
        return None
    return value if value is not None and content_hash(value) == recorded.get("content_hash") else None
