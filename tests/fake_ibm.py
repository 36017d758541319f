"""IBM Quantum faked at its boundary only: the Qiskit Runtime service.

:func:`~hybrid_resources.quantum.backends.ibm_service` is the one place the project reaches IBM.
:func:`install_fake_ibm` swaps it for :class:`FakeService`, whose ``backend(name)`` hands back one
of qiskit-ibm-runtime's fake backends (a real topology and calibration, simulated locally by
Aer with that calibration's noise). Everything above it (pennylane-qiskit's ``qiskit.remote``
device and its Sampler, PennyLane, our kernel engine, admission and the ledger) is the real code.
Every job that reaches the backend is counted in an :class:`IbmLedger`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class IbmLedger:
    """What reached the fake IBM backend."""

    jobs: int = 0
    circuits: int = 0
    shots: int = 0
    services: list[tuple[str, str]] = field(default_factory=list)  # (token, instance) per service opened
    backends: list[str] = field(default_factory=list)


class FakeService:
    def __init__(self, ledger: IbmLedger, factory: Any, token: str, instance: str):
        self.ledger, self.factory = ledger, factory
        ledger.services.append((token, instance))

    def backend(self, name: str) -> Any:
        backend = self.factory()
        self.ledger.backends.append(name)
        run = backend.run

        def counted_run(circuits: Any, **options: Any) -> Any:
            circuits = circuits if isinstance(circuits, list) else [circuits]
            self.ledger.jobs += 1
            self.ledger.circuits += len(circuits)
            self.ledger.shots += len(circuits) * int(options.get("shots") or 0)
            return run(circuits, **options)

        backend.run = counted_run
        return backend


def install_fake_ibm(monkeypatch: pytest.MonkeyPatch, factory: Any = None) -> IbmLedger:
    """Make every IBM Quantum service the project opens a :class:`FakeService` over ``factory``'s
    backends (default: qiskit-ibm-runtime's 5-qubit FakeManilaV2, quick to simulate)."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    ledger = IbmLedger()
    monkeypatch.setattr("hybrid_resources.quantum.backends.ibm_service",
                        lambda token, instance: FakeService(ledger, factory or FakeManilaV2, token, instance))
    return ledger
