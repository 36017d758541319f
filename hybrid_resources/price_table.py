"""The price table file: which one is in effect, and which devices it lists as free.

Pricing itself (per task, per shot, program sets, admission) is the cost policy's
(:mod:`hybrid_resources.cost_policy`); this module only reads the table, so that device
construction (:func:`~hybrid_resources.quantum.backends.make_device`) can tell a paid device
without depending on the cost policy, which builds on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_PRICE_TABLE = Path(__file__).with_name("prices.json")


def load_price_table(path: Path | None = None) -> dict[str, Any]:
    """The price table at ``path``, else the one shipped with the project."""
    return json.loads(Path(path or DEFAULT_PRICE_TABLE).read_text())


def price_table_in_effect() -> dict[str, Any]:
    """The table ``HYBRID_PRICE_TABLE`` names, else the shipped one (what the cost policy
    resource reads by default)."""
    path = os.environ.get("HYBRID_PRICE_TABLE", "")
    return load_price_table(Path(path) if path else None)


def is_free_device(device_name: str, table: dict[str, Any]) -> bool:
    """Whether ``table`` lists ``device_name`` (a PennyLane device name) as free; any other
    device is priced by its entry, or refused for want of one."""
    return device_name in table.get("free_devices", [])
