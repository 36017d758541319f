"""``hybrid-audit``: a model's audit trail, read from the Dagster instance's own event log.

For a materialization of an asset (default: the latest ``promoted_model``, else ``quantum_svm``)
it walks upstream through the exact materializations that were consumed, using the input
pointers Dagster records on every materialization (``dagster/input_event_pointer/<key>``), so
the report cannot drift from what actually ran. For each ancestor: run id, timestamp, code
version, data version, metadata and asset-check results; down to the landing files and their
hashes; then what the model registry recorded about the trail's models (status, events) and the
approvals given for them or used by its runs. Output is Markdown (default) or JSON (``--format json``).

``--rescore`` loads the stored arrays of that materialization and of its inputs (artifacts are
kept per data version) and recomputes the model's holdout metrics, to show that an old model
still reproduces what it recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import deque
from datetime import datetime, timezone
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance
from dagster._core.event_api import EventLogRecord

from hybrid_assets.serving.registry import SERVABLE, history, version_id
from hybrid_resources.data.artifacts import read_artifact, recorded_base
from hybrid_resources.data.warehouse import Warehouse

DEFAULT_TARGETS = ("promoted_model", "quantum_svm")
INPUT_POINTER_TAG = "dagster/input_event_pointer/"
_MAX_TEXT = 2000  # inline images and long Markdown are summarized, not copied


def _metadata_value(value: Any) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, str) and len(raw) > _MAX_TEXT:
        return f"<{len(raw)} characters, see the Dagster UI>"
    try:
        json.dumps(raw)
        return raw
    except TypeError:
        return str(raw)


def _check_results(instance: DagsterInstance, run_id: str, asset_key: AssetKey) -> list[dict[str, Any]]:
    results = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.asset_key != asset_key:
            continue
        results.append({
            "check": evaluation.check_name,
            "passed": evaluation.passed,
            "severity": evaluation.severity.value if evaluation.severity else None,
            "metadata": {k: _metadata_value(v) for k, v in evaluation.metadata.items()},
        })
    return results


def describe_materialization(instance: DagsterInstance, record: EventLogRecord) -> dict[str, Any]:
    """One node of the trail: the materialization, its versions, metadata, inputs and checks."""
    materialization = record.asset_materialization
    tags = materialization.tags or {}
    inputs = {
        key[len(INPUT_POINTER_TAG):]: {
            "storage_id": int(value),
            "data_version": tags.get(f"dagster/input_data_version/{key[len(INPUT_POINTER_TAG):]}"),
        }
        for key, value in tags.items() if key.startswith(INPUT_POINTER_TAG)
    }
    return {
        "asset": materialization.asset_key.to_user_string(),
        "partition": materialization.partition,
        "run_id": record.run_id,
        "storage_id": record.storage_id,
        "timestamp": datetime.fromtimestamp(record.timestamp, tz=timezone.utc).isoformat(),
        "code_version": tags.get("dagster/code_version"),
        "data_version": tags.get("dagster/data_version"),
        "inputs": inputs,
        "metadata": {k: _metadata_value(v) for k, v in materialization.metadata.items()},
        "checks": _check_results(instance, record.run_id, materialization.asset_key),
    }


def _record_by_storage_id(instance: DagsterInstance, asset: str, storage_id: int) -> EventLogRecord | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey.from_user_string(asset), storage_ids=[storage_id]), limit=1
    ).records
    return records[0] if records else None


def _partition_records_before(instance: DagsterInstance, asset_key: AssetKey, storage_id: int) -> list[EventLogRecord]:
    """The latest materialization of each partition of ``asset_key`` recorded before ``storage_id``."""
    latest: dict[str | None, EventLogRecord] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, before_storage_id=storage_id), limit=500, cursor=cursor
        )
        for record in page.records:  # newest first
            latest.setdefault(record.asset_materialization.partition, record)
        if not page.has_more:
            return sorted(latest.values(), key=lambda r: r.storage_id)
        cursor = page.cursor


def find_target(instance: DagsterInstance, asset: str | None, run_id: str | None) -> EventLogRecord:
    """The materialization to audit: of ``asset`` (or the default targets), in ``run_id`` or latest."""
    for candidate in ([asset] if asset else DEFAULT_TARGETS):
        cursor = None
        while True:
            page = instance.fetch_materializations(AssetKey.from_user_string(candidate), limit=200, cursor=cursor)
            for record in page.records:
                if run_id is None or record.run_id == run_id:
                    return record
            if not page.has_more:
                break
            cursor = page.cursor
    wanted = asset or " or ".join(DEFAULT_TARGETS)
    where = f" in run {run_id}" if run_id else ""
    raise LookupError(f"No materialization of {wanted}{where} in the instance at {instance.root_directory}; "
                      "run `make demo` (or materialize it in the UI) first, or pass another asset key.")


def audit_trail(instance: DagsterInstance, asset: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """The whole upstream chain of one materialization, as JSON-safe data."""
    target = find_target(instance, asset, run_id)
    # Imported here, like model_holdout in rescore: the graph brings every slice's libraries, which
    # `--help`, a usage error and an unknown asset do not need.
    from hybrid_assets.definitions import defs

    graph = defs.get_repository_def().asset_graph
    chain: list[dict[str, Any]] = []
    seen: set[int] = set()
    queue: deque[EventLogRecord] = deque([target])
    while queue:
        record = queue.popleft()
        if record.storage_id in seen:
            continue
        seen.add(record.storage_id)
        node = describe_materialization(instance, record)
        chain.append(node)
        key = record.asset_materialization.asset_key
        for parent in sorted(graph.get(key).parent_keys, key=lambda k: k.to_user_string()) if graph.has(key) else []:
            pointer = node["inputs"].get(parent.to_user_string())
            if graph.get(parent).partitions_def is not None:
                # The pointer names only the newest partition; the child read every partition.
                queue.extend(_partition_records_before(instance, parent, record.storage_id))
            elif pointer:
                upstream = _record_by_storage_id(instance, parent.to_user_string(), pointer["storage_id"])
                queue.extend([upstream] if upstream else [])
    landing = [
        {key: node["metadata"].get(key) for key in ("file_name", "file_hash", "status", "row_count", "reason")}
        | {"partition": node["partition"], "run_id": node["run_id"]}
        for node in chain if node["partition"] is not None and node["asset"] == "raw_samples"
    ]
    models = {version_id(node["asset"], node["data_version"]) for node in chain
              if node["asset"] in SERVABLE and node["data_version"]}
    return {
        "target": {"asset": chain[0]["asset"], "run_id": chain[0]["run_id"], "data_version": chain[0]["data_version"]},
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "instance": str(instance.root_directory),
        "chain": chain,
        "landing_files": landing,
        "registry": history(Warehouse(), versions=models, run_ids={node["run_id"] for node in chain}),
    }


def stored_value(record: EventLogRecord) -> Any:
    """The artifact a materialization stored (its own version, kept by the versioned artifact store)."""
    materialization = record.asset_materialization
    name = materialization.asset_key.to_user_string()
    base = recorded_base({key: getattr(value, "value", value) for key, value in materialization.metadata.items()},
                         materialization.asset_key.path, materialization.partition)
    if base is None:
        raise LookupError(f"the materialization of {name} in run {record.run_id} recorded no artifact")
    try:
        return read_artifact(base)
    except FileNotFoundError as missing:
        raise LookupError(f"the artifact of {name} from run {record.run_id} is no longer stored at {base.parent} "
                          "(removed by retention: raise keep_versions on the io_manager to keep more)") from missing


def rescore(instance: DagsterInstance, asset: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Recompute a stored model's holdout metrics from the stored versions of its inputs."""
    target = find_target(instance, asset or "quantum_svm", run_id)
    node = describe_materialization(instance, target)
    inputs = {}
    for parent, pointer in node["inputs"].items():
        upstream = _record_by_storage_id(instance, parent, pointer["storage_id"])
        if upstream is not None:
            inputs[parent] = stored_value(upstream)
    from hybrid_assets.training.models import model_holdout

    try:
        rescored = model_holdout(node["asset"], stored_value(target), inputs)
    except ValueError as error:
        raise LookupError(str(error)) from error
    recorded = {name.split("/", 1)[1]: value for name, value in node["metadata"].items() if name.startswith("holdout/")}
    # Every recorded figure must come out the same; a metric added since (e.g. balanced accuracy) is shown only.
    same = bool(recorded) and recorded.keys() <= rescored.keys() and all(
        recorded[name] == rescored[name] or (math.isnan(recorded[name]) and math.isnan(rescored[name]))
        for name in recorded)
    return {"asset": node["asset"], "run_id": node["run_id"], "data_version": node["data_version"],
            "inputs": {parent: pointer["data_version"] for parent, pointer in node["inputs"].items()},
            "recorded": recorded, "rescored": rescored, "reproduced": same}


def _cell(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(trail: dict[str, Any]) -> str:
    """The audit trail as a Markdown report."""
    target = trail["target"]
    lines = [
        f"# Audit trail: {target['asset']}",
        "",
        f"- run: `{target['run_id']}`",
        f"- data version: `{target['data_version']}`",
        f"- instance: `{trail['instance']}`",
        f"- generated: {trail['generated_at']}",
        "",
        "## Landing files",
        "",
        "| partition | file | sha256 | status | rows | reason |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for landed in trail["landing_files"]:
        lines.append(f"| {_cell(landed['partition'])} | {_cell(landed['file_name'])} | `{landed['file_hash']}` | "
                     f"{landed['status']} | {landed['row_count']} | {_cell(landed['reason'] or '')} |")
    registry = trail["registry"]
    lines += ["", "## Model registry and approvals", ""]
    lines += [f"- `{m['version_id']}`: {m['status']} (registered {m['registered_at']})" for m in registry["models"]]
    lines += [f"- {e['happened_at']}: `{e['version_id']}` {e['action']} {e['from_status'] or '-'} -> "
              f"{e['to_status']} by {_cell(e['actor'])}: {_cell(e['reason'])}" for e in registry["events"]]
    lines += [f"- approval `{a['approval_id']}` of {a['subject']} by {_cell(a['actor'])} at {a['approved_at']}: "
              f"{_cell(a['reason'])} (used by {a['used_by'] or 'nothing yet'})" for a in registry["approvals"]]
    if not any(registry.values()):
        lines.append("- nothing recorded for the models in this trail")
    for node in trail["chain"]:
        if node["asset"] == "raw_samples":
            continue
        lines += [
            "",
            f"## {node['asset']}",
            "",
            f"- run `{node['run_id']}` at {node['timestamp']}",
            f"- code version `{node['code_version']}`, data version `{node['data_version']}`",
        ]
        for parent, pointer in sorted(node["inputs"].items()):
            lines.append(f"- input `{parent}`: data version `{pointer['data_version']}`")
        for check in node["checks"]:
            verdict = "passed" if check["passed"] else f"FAILED ({check['severity']})"
            lines.append(f"- check `{check['check']}`: {verdict}")
        lines += ["", "| metadata | value |", "| --- | --- |"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in sorted(node["metadata"].items())]
    return "\n".join(lines) + "\n"


def _rescore_markdown(result: dict[str, Any]) -> str:
    lines = [f"# Rescore: {result['asset']} from run `{result['run_id']}`", "",
             f"- data version `{result['data_version']}`",
             *[f"- input `{name}`: data version `{version}`" for name, version in sorted(result["inputs"].items())],
             "", "| metric | recorded | rescored |", "| --- | --- | --- |",
             *[f"| {name} | {result['recorded'].get(name)} | {value} |" for name, value in result["rescored"].items()],
             "", f"Reproduced: {'yes' if result['reproduced'] else 'NO'}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid-audit", description=__doc__.split("\n\n")[0].replace("``", "`"))
    parser.add_argument("asset", nargs="?", help="asset key, e.g. quantum_svm (default: promoted_model, else quantum_svm)")
    parser.add_argument("--run-id", help="audit the materialization from this run (default: the latest)")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--output", help="write to this file instead of stdout")
    parser.add_argument("--rescore", action="store_true",
                        help="load the model's stored arrays and inputs and recompute its holdout metrics")
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        try:
            if args.rescore:
                result = rescore(instance, args.asset, args.run_id)
            else:
                trail = audit_trail(instance, args.asset, args.run_id)
        except LookupError as error:
            print(f"hybrid-audit: {error}", file=sys.stderr)
            return 2
    if args.rescore:
        text = json.dumps(result, indent=2, sort_keys=True) if args.format == "json" else _rescore_markdown(result)
    else:
        text = json.dumps(trail, indent=2, sort_keys=True) if args.format == "json" else to_markdown(trail)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
