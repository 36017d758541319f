"""The device boundary for tests: the real DefaultQubit.execute, wrapped to count and to fail.

Nothing of the project's own logic is replaced; only the device call is observed (and, where a
test needs it, made to raise the way a throttled cloud device would).
"""

from __future__ import annotations

import pytest
from pennylane.devices import DefaultQubit


class ThrottlingException(RuntimeError):
    """Named like the AWS error the engine treats as transient."""


class DeviceBoundary:
    """Counts circuits reaching ``DefaultQubit.execute``; the first ``fail_first`` calls raise ``error``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_first: int = 0,
                 error: type[Exception] = ThrottlingException):
        self.circuits, self.calls, self.fail_first = 0, 0, fail_first
        original, boundary = DefaultQubit.execute, self

        def execute(device, circuits, execution_config=None):
            boundary.calls += 1
            if boundary.calls <= boundary.fail_first:
                raise error("Rate exceeded")
            boundary.circuits += len(circuits)
            return original(device, circuits, execution_config)

        monkeypatch.setattr(DefaultQubit, "execute", execute)
