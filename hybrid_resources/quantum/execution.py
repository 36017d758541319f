"""Running a list of circuits on the configured device: batched, seeded, retried, recorded.

The kernel engine's compute-uncompute path does the same for its pair circuits; this is the
general form for any list of tapes (the projected kernel's basis-measurement circuits, the noisy
kernel's circuits). What it keeps from the engine, and why:

- devices come from :func:`~hybrid_resources.quantum.backends.make_device` only, so a
  :class:`~hybrid_resources.quantum.backends.SubmissionLedger` records every circuit the device
  runs (the caller admits the plan before calling);
- ``backend.circuits_per_call`` circuits go in one device call, the unit a transient fault
  retries (one circuit per call on Braket without parallel submission, a whole program set with
  program sets);
- each call on a seedable simulator gets a device seeded by (seed, call index), so results do
  not depend on thread scheduling;
- Braket parallelism lives inside the plugin (``parallel=True`` task batches, program sets), so
  only non-Braket devices run calls in threads, at most ``backend.max_parallel`` at once.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from hybrid_resources.lazy_modules import module_on_first_use
from hybrid_resources.quantum.backends import (
    BackendConfig,
    SubmissionLedger,
    call_with_retries,
    make_device,
)

qml = module_on_first_use("pennylane")


def call_seed(seed: int, call_index: int) -> int:
    """A 63-bit seed for device call ``call_index`` (blake2b of "seed:index"), the engine's rule."""
    digest = hashlib.blake2b(f"{seed}:{call_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def execute_tapes(
    tapes: Sequence[qml.tape.QuantumScript],
    backend: BackendConfig,
    wires: int,
    *,
    ledger: SubmissionLedger | None = None,
    on_call: Callable[[int], None] | None = None,
) -> tuple[list[Any], int]:
    """Execute ``tapes`` (each with its own shots) on ``backend``'s device with ``wires`` qubits.

    Args:
        tapes: circuits to run, in order; shots are set on the tapes (PennyLane 0.45 style).
        backend: the device configuration (batching, retries, parallelism, seed).
        wires: device width.
        ledger: records every circuit the device executes; its ``failed`` records each transient
            fault. Admission is the caller's (it knows the plan).
        on_call: called with the number of circuits each device call returned (progress/ETA).

    Returns:
        (results in tape order, number of retries).

    Raises:
        BackendUnavailableError: a call still failed after ``backend.max_retries`` retries.
    """
    size = backend.circuits_per_call
    calls = [list(tapes[s : s + size]) for s in range(0, len(tapes), size)]
    retries = [0] * len(calls)
    is_braket = backend.device_name.startswith("braket.")
    shared = make_device(backend, wires, ledger=ledger) if is_braket and calls else None

    def run_call(ci: int) -> list[Any]:
        device = shared if shared is not None else make_device(
            backend, wires, seed=call_seed(backend.seed, ci), ledger=ledger)

        def count(attempt: int, exc: BaseException, delay: float) -> None:
            retries[ci] += 1

        results = call_with_retries(
            lambda: qml.execute(calls[ci], device, diff_method=None),
            max_retries=backend.max_retries, backoff_s=backend.backoff_s, seed=backend.seed + ci,
            on_retry=count, on_failure=ledger.failed if ledger is not None else None)
        if on_call is not None:
            on_call(len(calls[ci]))
        return list(results)

    if backend.max_parallel > 1 and not is_braket and len(calls) > 1:
        with ThreadPoolExecutor(max_workers=backend.max_parallel) as pool:
            chunks = list(pool.map(run_call, range(len(calls))))
    else:
        chunks = [run_call(ci) for ci in range(len(calls))]
    return [result for chunk in chunks for result in chunk], sum(retries)
