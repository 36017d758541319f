"""Scoring records from a Redis stream (a new record lands in a queue and is scored as it arrives).

A record is a stream entry with the fields ``sample_id`` and ``features``, a JSON object of the
training feature columns ({"f0": 1.2, "plan": "pro", ...}): numbers for numeric columns, text for
categorical ones, null for a missing value (imputed as a file's empty cell is). The consumer group gives at-least-once delivery: an
entry read but not acknowledged stays pending and is read again next time, so a record is
acknowledged only after its prediction is committed; predictions are idempotent by sample id and
model version, so a re-delivery writes no duplicate.

A record that cannot be scored goes to the dead-letter stream (``<stream>:dead``) with its reason,
and is acknowledged; the other records of its batch are scored. That is any record that is
malformed or hostile (over the size or feature caps, checked before its JSON is parsed; not JSON;
nested; a missing, extra or non-finite feature; an error no rule foresaw), and any record already
delivered ``max_deliveries`` times without an acknowledgement (it may be what crashes the scorer).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

CONSUMER = "scorer"
MAX_RECORD_BYTES = 64 * 1024
MAX_FEATURES = 10_000
MAX_DELIVERIES = 3
REASON_QUOTE_CHARS = 120  # a reason quotes at most this much of an offending value or error


@dataclass(frozen=True)
class StreamEntry:
    """One entry as read from the stream: its id, its fields, and how many times the group had
    delivered it before this read without an acknowledgement (0: a new entry)."""

    entry_id: str
    fields: dict[str, str]
    earlier_deliveries: int = 0


@dataclass(frozen=True)
class StreamRecord:
    """One entry of the stream: its id, and its sample id and features when it parsed."""

    entry_id: str
    fields: dict[str, str]
    sample_id: str = ""
    features: dict[str, float] | None = None  # numeric columns; NaN where the record gives null (imputed)
    error: str = ""
    categories: list[str | None] | None = None  # the dataset's categorical columns, in their order

    @property
    def received_at(self) -> float:
        """When Redis received the entry (epoch seconds): an entry id is ``<milliseconds>-<sequence>``."""
        return int(self.entry_id.split("-", 1)[0]) / 1000.0


class UnscorableRecord(ValueError):
    """Why a record cannot be scored: its reason on the dead-letter stream."""


def quoted(value: Any) -> str:
    """``repr(value)``, cut to REASON_QUOTE_CHARS characters (a hostile value can be long)."""
    text = repr(value)
    return text if len(text) <= REASON_QUOTE_CHARS else f"{text[:REASON_QUOTE_CHARS]}... ({len(text)} characters)"


def record_bytes(fields: dict[str, str]) -> int:
    """The record's size: its field names and values in UTF-8."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in fields.items())


def checked_sample_id(fields: dict[str, str]) -> str:
    sample_id = (fields.get("sample_id") or "").strip()
    if not sample_id:
        raise UnscorableRecord("no sample_id field")
    if "\ufffd" in sample_id:  # the client decodes bytes that are not UTF-8 to U+FFFD
        raise UnscorableRecord(f"sample_id is not valid UTF-8: {quoted(sample_id)}")
    return sample_id


def features_object(text: str, max_features: int) -> dict[str, Any]:
    """The ``features`` JSON text parsed, once it is known to name at most ``max_features``
    members: each member needs a ':', so counting them bounds the object before json.loads sees it."""
    if text.count(":") > max_features:
        raise UnscorableRecord(f"features has more than {max_features} features (the cap max_features)")
    try:
        features = json.loads(text)
    except RecursionError:
        raise UnscorableRecord("features is nested too deeply to parse; a flat JSON object is expected") from None
    except ValueError as error:  # not JSON, or an integer of more digits than Python converts
        raise UnscorableRecord(f"features is not JSON: {quoted(str(error))}") from None
    if not isinstance(features, dict):
        raise UnscorableRecord("features is not a JSON object of feature columns")
    return features


def finite_float(name: str, value: Any) -> float:
    """``value`` as a float, or the reason it is not a finite number (a string, a bool, null, NaN,
    an infinity, an integer beyond the float range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnscorableRecord(f"feature {name!r} is not a finite number: {quoted(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise UnscorableRecord(f"feature {name!r} is not a finite number: an integer of "
                               f"{len(str(abs(value)))} digits, beyond the float range") from None
    if not math.isfinite(number):
        raise UnscorableRecord(f"feature {name!r} is not a finite number: {number!r}")
    return number


def category_value(name: str, value: Any) -> str | None:
    """A categorical column's value as text (a number is its text); null is a missing value."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnscorableRecord(f"categorical feature {name!r} is not a text value: {quoted(value)}")
    return str(value)


def checked_features(fields: dict[str, str], feature_names: list[str], max_features: int,
                     category_names: list[str] = ()) -> tuple[dict[str, float], list[str | None]]:
    """(numeric features by name, categories in ``category_names`` order) of a record. A null
    value is a missing value (imputed like a file's empty cell); any other value must be a finite
    number (numeric columns) or a text (categorical columns)."""
    if "features" not in fields:
        raise UnscorableRecord("no features field")
    features = features_object(fields["features"], max_features)
    expected = [*feature_names, *category_names]
    missing = sorted(set(expected) - set(features))
    extra = sorted(set(features) - set(expected))
    if missing or extra:
        raise UnscorableRecord(f"feature columns differ from the training data: missing {quoted(missing[:5])}, "
                               f"unexpected {quoted(extra[:5])}")
    numeric = {name: math.nan if features[name] is None else finite_float(name, features[name])
               for name in feature_names}
    return numeric, [category_value(name, features[name]) for name in category_names]


def parse_record(entry_id: str, fields: dict[str, str], feature_names: list[str], *,
                 max_bytes: int = MAX_RECORD_BYTES, max_features: int = MAX_FEATURES,
                 category_names: list[str] = ()) -> StreamRecord:
    """A record with its sample id and features in ``feature_names``, or with the reason it cannot
    be scored. The size cap (``max_bytes``) and the feature cap are checked before any JSON is
    parsed. Never raises: an error no rule foresaw is the record's reason too (its type and message)."""
    try:
        size = record_bytes(fields)
        if size > max_bytes:
            raise UnscorableRecord(f"record is {size} bytes, over the cap of {max_bytes} (max_record_bytes)")
        sample_id = checked_sample_id(fields)
        numeric, categories = checked_features(fields, feature_names, max_features, category_names)
        return StreamRecord(entry_id, fields, sample_id, numeric, categories=categories)
    except UnscorableRecord as reason:
        return StreamRecord(entry_id, fields, error=str(reason))
    except Exception as error:  # noqa: BLE001 - fail safe: one record's surprise never stops the others
        return StreamRecord(entry_id, fields, error=f"unexpected {type(error).__name__}: {quoted(str(error))}")


class ScoringStream(ConfigurableResource):
    """A Redis stream of scoring records, read through a consumer group."""

    url: str = Field(default="", description="Redis URL, e.g. redis://host:6379/0; empty: no stream is consumed")
    stream: str = Field(default="hybrid:scoring", description="Stream key of the scoring records")
    group: str = Field(default="hybrid-scoring", description="Consumer group")
    batch: int = Field(default=1000, ge=1, description="Records scored per run at most")
    max_record_bytes: int = Field(default=MAX_RECORD_BYTES, ge=1, description="A larger record (its field names "
                                  "and values in UTF-8) goes to the dead-letter stream unparsed")
    max_features: int = Field(default=MAX_FEATURES, ge=1, description="A record naming more features goes to the "
                              "dead-letter stream unparsed")
    max_deliveries: int = Field(default=MAX_DELIVERIES, ge=1, description="A record delivered this many times "
                                "without an acknowledgement goes to the dead-letter stream instead of a next time")

    @property
    def dead_letter(self) -> str:
        return f"{self.stream}:dead"

    def client(self):
        """A client that decodes to str; bytes that are not UTF-8 become U+FFFD instead of failing
        the whole read (the record holding them is then dead-lettered)."""
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True, encoding_errors="replace")

    def ensure_group(self, client) -> None:
        import redis

        try:
            client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def backlog(self, client) -> dict[str, int]:
        """Entries not yet delivered to the group (lag) and delivered but not acknowledged (pending).
        Redis reports no lag once an undelivered entry was deleted: then lag is 1 if any entry
        follows the last delivered one (so the stream does not look empty), else 0."""
        self.ensure_group(client)
        group = next(g for g in client.xinfo_groups(self.stream) if g["name"] == self.group)
        lag = group.get("lag")
        if lag is None:
            lag = len(client.xrange(self.stream, f"({group['last-delivered-id']}", "+", count=1))
        return {"pending": int(group["pending"]), "lag": int(lag)}

    def read(self, client) -> list[StreamEntry]:
        """The group's pending entries first (delivered before, never acknowledged: a run died or
        failed), claimed for this consumer with how often they were delivered; else new ones; at
        most ``batch``. One consumer runs at a time (the op's pool), so claiming takes from no live
        one. A pending entry deleted from the stream meanwhile is acknowledged: nothing to score."""
        self.ensure_group(client)
        pending = client.xpending_range(self.stream, self.group, "-", "+", self.batch)
        if pending:
            deliveries = {row["message_id"]: int(row["times_delivered"]) for row in pending}
            claimed = client.xclaim(self.stream, self.group, CONSUMER, 0, list(deliveries))
            entries = [StreamEntry(entry_id, fields, deliveries[entry_id]) for entry_id, fields in claimed if fields]
            self.acknowledge(client, sorted(set(deliveries) - {entry.entry_id for entry in entries}))
            if entries:
                return entries
        reply = client.xreadgroup(self.group, CONSUMER, {self.stream: ">"}, count=self.batch)
        return [StreamEntry(entry_id, fields) for _, items in reply for entry_id, fields in items if fields]

    def parse(self, entry: StreamEntry, feature_names: list[str], category_names: list[str] = ()) -> StreamRecord:
        """The entry as a record under this stream's caps. One already delivered ``max_deliveries``
        times is not parsed again (it may be what crashes the scorer): that is its reason."""
        if entry.earlier_deliveries >= self.max_deliveries:
            return StreamRecord(entry.entry_id, entry.fields,
                                error=f"delivered {entry.earlier_deliveries} times without an acknowledgement "
                                      f"(max_deliveries {self.max_deliveries})")
        return parse_record(entry.entry_id, entry.fields, feature_names, max_bytes=self.max_record_bytes,
                            max_features=self.max_features, category_names=category_names)

    def acknowledge(self, client, entry_ids: list[str]) -> None:
        if entry_ids:
            client.xack(self.stream, self.group, *entry_ids)

    def reject(self, client, record: StreamRecord) -> None:
        """Move a record that cannot be scored to the dead-letter stream with its reason, then
        acknowledge it. The dead letter keeps the record's fields as JSON, cut to
        ``max_record_bytes`` characters (then ``fields_chars`` says how long they were)."""
        fields = json.dumps(record.fields, sort_keys=True)
        letter = {"entry_id": record.entry_id, "reason": record.error, "fields": fields[:self.max_record_bytes]}
        if len(fields) > self.max_record_bytes:
            letter["fields_chars"] = str(len(fields))
        client.xadd(self.dead_letter, letter)
        client.xack(self.stream, self.group, record.entry_id)

    def describe(self) -> dict[str, Any]:
        return {"stream": self.stream, "group": self.group, "dead_letter": self.dead_letter,
                "max_record_bytes": self.max_record_bytes, "max_features": self.max_features,
                "max_deliveries": self.max_deliveries}
