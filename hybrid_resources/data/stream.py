"""Scoring records from a Redis stream (a new record lands in a queue and is scored as it arrives).

A record is a stream entry with the fields ``sample_id`` and ``features``, a JSON object of the
training feature columns ({"f0": 1.2, ...}). The consumer group gives at-least-once delivery: an
entry read but not acknowledged stays pending for its consumer and is read again next time, so a
record is acknowledged only after its prediction is committed; predictions are idempotent by
sample id and model version, so a re-delivery writes no duplicate. A malformed record goes to the
dead-letter stream (``<stream>:dead``) with its reason, and is acknowledged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

CONSUMER = "scorer"


@dataclass(frozen=True)
class StreamRecord:
    """One entry of the stream: its id, and its sample id and features when it parsed."""

    entry_id: str
    fields: dict[str, str]
    sample_id: str = ""
    features: dict[str, float] | None = None
    error: str = ""

    @property
    def received_at(self) -> float:
        """When Redis received the entry (epoch seconds): an entry id is ``<milliseconds>-<sequence>``."""
        return int(self.entry_id.split("-", 1)[0]) / 1000.0


def parse_record(entry_id: str, fields: dict[str, str], feature_names: list[str]) -> StreamRecord:
    """A record with its sample id and features in ``feature_names``, or with the reason it is malformed."""
    sample_id = (fields.get("sample_id") or "").strip()
    if not sample_id:
        return StreamRecord(entry_id, fields, error="no sample_id field")
    try:
        features = json.loads(fields.get("features", ""))
    except json.JSONDecodeError as error:
        return StreamRecord(entry_id, fields, sample_id, error=f"features is not JSON: {error}")
    if not isinstance(features, dict):
        return StreamRecord(entry_id, fields, sample_id, error="features is not a JSON object of feature columns")
    missing = sorted(set(feature_names) - set(features))
    extra = sorted(set(features) - set(feature_names))
    if missing or extra:
        return StreamRecord(entry_id, fields, sample_id,
                            error=f"feature columns differ from the training data: missing {missing[:5]}, "
                                  f"unexpected {extra[:5]}")
    values = {}
    for name in feature_names:
        value = features[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return StreamRecord(entry_id, fields, sample_id, error=f"feature {name!r} is not a finite number: {value!r}")
        values[name] = float(value)
    return StreamRecord(entry_id, fields, sample_id, values)


class ScoringStream(ConfigurableResource):
    """A Redis stream of scoring records, read through a consumer group."""

    url: str = Field(default="", description="Redis URL, e.g. redis://host:6379/0; empty: no stream is consumed")
    stream: str = Field(default="hybrid:scoring", description="Stream key of the scoring records")
    group: str = Field(default="hybrid-scoring", description="Consumer group")
    batch: int = Field(default=1000, ge=1, description="Records scored per run at most")

    @property
    def dead_letter(self) -> str:
        return f"{self.stream}:dead"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True)

    def ensure_group(self, client) -> None:
        import redis

        try:
            client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def backlog(self, client) -> dict[str, int]:
        """Entries not yet delivered to the group (lag) and delivered but not acknowledged (pending)."""
        self.ensure_group(client)
        group = next(g for g in client.xinfo_groups(self.stream) if g["name"] == self.group)
        return {"pending": int(group["pending"]), "lag": int(group.get("lag") or 0)}

    def read(self, client) -> list[tuple[str, dict[str, str]]]:
        """This consumer's pending entries first (a run that died before acknowledging them), else
        new ones; at most ``batch``."""
        self.ensure_group(client)
        for start in ("0", ">"):
            reply = client.xreadgroup(self.group, CONSUMER, {self.stream: start}, count=self.batch)
            entries = [(entry_id, fields) for _, items in reply for entry_id, fields in items if fields]
            if entries:
                return entries
        return []

    def acknowledge(self, client, entry_ids: list[str]) -> None:
        if entry_ids:
            client.xack(self.stream, self.group, *entry_ids)

    def reject(self, client, record: StreamRecord) -> None:
        """Move a malformed record to the dead-letter stream with its reason, then acknowledge it."""
        client.xadd(self.dead_letter, {"entry_id": record.entry_id, "reason": record.error,
                                       "fields": json.dumps(record.fields, sort_keys=True)})
        client.xack(self.stream, self.group, record.entry_id)

    def describe(self) -> dict[str, Any]:
        return {"stream": self.stream, "group": self.group, "dead_letter": self.dead_letter}
