"""The ledger counts a task when the device creates it: spend recorded equals tasks created.

The paid device is Braket's real ``LocalSimulator`` (``braket.local.qubit``), priced like a QPU in
an overriding price table. The device boundary is the only thing touched: ``LocalSimulator.run``
/ ``run_batch`` are wrapped to count the tasks created, and ``LocalQuantumTask.result`` can be
made to raise (a result lost while polling). Everything above it is the real code: the Braket
plugin, PennyLane, execute_tapes and its retries, the ledger, its journal and DuckDB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pennylane as qml
import pytest
from braket.devices import LocalSimulator
from braket.tasks.local_quantum_task import LocalQuantumTask
from dagster import materialize

from hybrid_assets.definitions import all_assets
from hybrid_resources.cost_policy import (
    BudgetExceededError,
    CostPolicy,
    billed_task,
    replay_spend_journals,
)
from hybrid_resources.data.spend_journal import journal_dir, read_entries
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.quantum.backends import (
    BackendConfig,
    BackendUnavailableError,
    LedgerRequiredError,
    QuantumBackend,
    make_device,
)
from hybrid_resources.quantum.execution import execute_tapes
from tests.bad_files import write_good_csv
from tests.conftest import REPO, RESOURCES, ingest, kill_when_ready, priced_like_a_qpu

PER_TASK, PER_SHOT, SHOTS = 0.30, 0.01, 100
TASK_USD = PER_TASK + SHOTS * PER_SHOT  # $1.30 per task of 100 shots
LOCAL = BackendConfig("braket.local.qubit", shots=SHOTS, max_retries=2, backoff_s=0.0)


class DeviceBoundary:
    """Counts the tasks Braket's LocalSimulator creates; the first ``fail_results`` results raise a
    transient error (a poll that timed out), after the task was created and billed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_results: int = 0):
        self.created, self.shots, self.fail_results, self.results = 0, 0, fail_results, 0
        run, run_batch, result = LocalSimulator.run, LocalSimulator.run_batch, LocalQuantumTask.result
        boundary = self

        def counted_run(device, task_specification, shots=0, *args, **kwargs):
            task = run(device, task_specification, shots, *args, **kwargs)
            boundary.created, boundary.shots = boundary.created + 1, boundary.shots + shots
            return task

        def counted_batch(device, task_specifications, shots=0, *args, **kwargs):
            batch = run_batch(device, task_specifications, shots, *args, **kwargs)
            boundary.created += len(batch.tasks)
            boundary.shots += shots * len(batch.tasks)
            return batch

        def failing_result(task):
            boundary.results += 1
            if boundary.results <= boundary.fail_results:
                raise TimeoutError("polling the task's result timed out")
            return result(task)

        monkeypatch.setattr(LocalSimulator, "run", counted_run)
        monkeypatch.setattr(LocalSimulator, "run_batch", counted_batch)
        monkeypatch.setattr(LocalQuantumTask, "result", failing_result)


def priced_policy(tmp_path: Path, budget: float = 1000.0, warehouse: Warehouse | None = None) -> CostPolicy:
    prices = priced_like_a_qpu(tmp_path, device="braket.local.qubit", per_task=PER_TASK, per_shot=PER_SHOT)
    return CostPolicy(warehouse=warehouse or Warehouse(path=str(tmp_path / "ledger.duckdb")),
                      run_budget_usd=budget, daily_budget_usd=budget, price_table_path=str(prices))


def tapes(n: int) -> list[qml.tape.QuantumScript]:
    return [qml.tape.QuantumScript([qml.RX(0.1 * (i + 1), 0), qml.CNOT([0, 1])], [qml.probs(wires=[0, 1])],
                                   shots=SHOTS) for i in range(n)]


def recorded(warehouse: Warehouse, run_id: str | None = None) -> tuple[int, int, float]:
    """(tasks, shots, USD) in quantum_spend, for one run or all."""
    where, args = (" WHERE run_id = ?", [run_id]) if run_id else ("", [])
    with warehouse.connect(read_only=True) as connection:
        tasks, shots, usd = connection.execute("SELECT coalesce(sum(tasks), 0), coalesce(sum(shots), 0), "
                                               f"coalesce(sum(estimated_usd), 0) FROM quantum_spend{where}",
                                               args).fetchone()
    return int(tasks), int(shots), float(usd)


def test_a_result_that_never_arrives_is_billed_and_recorded_with_every_retry(tmp_path, monkeypatch):
    device = DeviceBoundary(monkeypatch, fail_results=2)
    policy = priced_policy(tmp_path)
    with policy.ledger(run_id="flaky", asset="k", backend=LOCAL) as ledger:
        ledger.admit(3, SHOTS)
        results, retries = execute_tapes(tapes(3), LOCAL, 2, ledger=ledger)
    assert len(results) == 3 and retries == 2
    assert device.created == 5  # the first circuit was sent three times: each task was created and billed
    assert ledger.tasks == device.created and ledger.reported_circuits == 3
    assert recorded(policy.warehouse, "flaky") == (5, 5 * SHOTS, pytest.approx(5 * TASK_USD))


def test_a_step_whose_results_all_fail_still_records_every_task_it_created(tmp_path, monkeypatch):
    device = DeviceBoundary(monkeypatch, fail_results=10**6)
    policy = priced_policy(tmp_path)
    with policy.ledger(run_id="lost", asset="k", backend=LOCAL) as ledger:
        ledger.admit(1, SHOTS)
        with pytest.raises(BackendUnavailableError):
            execute_tapes(tapes(1), LOCAL, 2, ledger=ledger)
    assert device.created == 1 + LOCAL.max_retries == 3
    assert recorded(policy.warehouse, "lost") == (3, 300, pytest.approx(3 * TASK_USD))  # was $0 before


def test_a_retry_that_does_not_fit_the_budget_is_refused_before_it_is_sent(tmp_path, monkeypatch):
    device = DeviceBoundary(monkeypatch, fail_results=1)
    policy = priced_policy(tmp_path, budget=3 * TASK_USD + 0.5)  # the plan fits, one retry more does not
    with policy.ledger(run_id="tight", asset="k", backend=LOCAL) as ledger:
        ledger.admit(3, SHOTS)
        with pytest.raises(BudgetExceededError) as refused:
            execute_tapes(tapes(3), LOCAL, 2, ledger=ledger)
    message = refused.value.description
    assert "Refused before submission" in message and "retry" in message and "max_retries" in message
    assert device.created == 3  # the retry ran within the plan; the 3rd circuit, over it, was never sent
    assert recorded(policy.warehouse, "tight") == (3, 300, pytest.approx(3 * TASK_USD))
    assert recorded(policy.warehouse)[2] <= policy.run_budget_usd


def hold_the_warehouse(path: Path) -> subprocess.Popen:
    """Another process holding the DuckDB file's lock until its stdin closes."""
    hold = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=60)


def test_spend_the_locked_warehouse_refused_stays_journaled_and_is_recorded_once(tmp_path, monkeypatch):
    device = DeviceBoundary(monkeypatch, fail_results=1)
    policy = priced_policy(tmp_path)
    ledger = policy.ledger(run_id="locked", asset="k", backend=LOCAL)
    ledger.admit(5, SHOTS)  # room for the retry: a retry past the admission needs the warehouse to be admitted
    holder = hold_the_warehouse(policy.warehouse.file)
    try:
        ledger.FLUSH_EVERY = 1  # every task tries the warehouse, and finds it locked
        ledger.TELEMETRY_WAIT_S = 0.1  # the failure and task rows give up at once too (they are telemetry)
        execute_tapes(tapes(4), LOCAL, 2, ledger=ledger)
        ledger.close()
    finally:
        release(holder)
    assert device.created == 5
    assert recorded(policy.warehouse) == (0, 0, 0.0)  # nothing reached the warehouse ...
    (journal,) = journal_dir(policy.warehouse).glob("*.jsonl")
    assert sum(entry["usd"] for entry in read_entries(journal)) == pytest.approx(5 * TASK_USD)  # ... nor was lost
    assert replay_spend_journals(policy.warehouse) == 5
    assert replay_spend_journals(policy.warehouse) == 0  # idempotent
    assert recorded(policy.warehouse) == (5, 500, pytest.approx(5 * TASK_USD))
    assert not list(journal_dir(policy.warehouse).glob("*.jsonl"))


def test_a_replayed_entry_the_warehouse_already_holds_is_not_counted_twice(tmp_path, monkeypatch):
    DeviceBoundary(monkeypatch)
    policy = priced_policy(tmp_path)
    with policy.ledger(run_id="once", asset="k", backend=LOCAL) as ledger:
        ledger.admit(2, SHOTS)
        execute_tapes(tapes(2), LOCAL, 2, ledger=ledger)
        entries = list(ledger._pending)
    # A journal left behind after its entries were recorded (a kill between the two): replay skips them.
    (journal_dir(policy.warehouse) / "leftover.jsonl").write_text(
        "".join(__import__("json").dumps(entry) + "\n" for entry in entries) + '{"torn')
    assert replay_spend_journals(policy.warehouse) == 0
    assert recorded(policy.warehouse) == (2, 200, pytest.approx(2 * TASK_USD))


def test_admission_counts_spend_a_live_ledger_journaled_but_could_not_record(tmp_path, monkeypatch):
    DeviceBoundary(monkeypatch)
    policy = priced_policy(tmp_path, budget=5 * TASK_USD)
    first = policy.ledger(run_id="r1", asset="k", backend=LOCAL)
    first.admit(3, SHOTS)
    holder = hold_the_warehouse(policy.warehouse.file)
    try:
        first.FLUSH_EVERY, first.TELEMETRY_WAIT_S = 1, 0.1
        execute_tapes(tapes(3), LOCAL, 2, ledger=first)  # journaled, not recorded: the ledger stays open
    finally:
        release(holder)
    assert recorded(policy.warehouse)[0] == 0
    with pytest.raises(BudgetExceededError, match=r"\$3.90 already spent"):
        # 3 + 3 tasks > 5; the journaled $3.90 is counted once, not again as the open reservation's
        policy.ledger(run_id="r2", asset="k", backend=LOCAL).admit(3, SHOTS)
    first.close()
    assert recorded(policy.warehouse) == (3, 300, pytest.approx(3 * TASK_USD))


ADMIT_IN_A_PROCESS = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hybrid_resources.cost_policy import CostPolicy, SubmissionRefused
    from hybrid_resources.data.warehouse import Warehouse
    from hybrid_resources.quantum.backends import BackendConfig

    warehouse, prices, run_id, out, go = sys.argv[1:6]
    policy = CostPolicy(warehouse=Warehouse(path=warehouse), run_budget_usd=5.0, daily_budget_usd=5.0,
                        price_table_path=prices)
    with policy.ledger(run_id=run_id, asset="k", backend=BackendConfig("braket.local.qubit", shots=100)) as ledger:
        try:
            ledger.admit(3, 100)
            Path(out).write_text("admitted")
        except SubmissionRefused:
            Path(out).write_text("refused")
        while not Path(go).exists():  # hold the ledger open: the other process admits meanwhile
            time.sleep(0.05)
""")


def test_two_processes_admitted_at_once_cannot_jointly_overspend(tmp_path):
    policy = priced_policy(tmp_path, budget=5.0)  # one plan of 3 x $1.30 fits the day, two do not
    go = tmp_path / "go"
    outs = [tmp_path / f"out-{n}" for n in range(2)]
    workers = [subprocess.Popen([sys.executable, "-c", ADMIT_IN_A_PROCESS, str(policy.warehouse.file),
                                 policy.price_table_path, f"run-{n}", str(out), str(go)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
               for n, out in enumerate(outs)]
    try:
        for worker, out in zip(workers, outs):
            while not out.exists():
                assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
    finally:
        go.write_text("go")
        for worker in workers:
            worker.wait(timeout=120)
    assert sorted(out.read_text() for out in outs) == ["admitted", "refused"]
    with policy.warehouse.connect(read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM spend_reservations WHERE released_at IS NULL").fetchone()[0] == 0


RESERVE_THEN_WAIT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hybrid_resources.cost_policy import CostPolicy
    from hybrid_resources.data.warehouse import Warehouse
    from hybrid_resources.quantum.backends import BackendConfig

    warehouse, prices, ready = sys.argv[1:4]
    policy = CostPolicy(warehouse=Warehouse(path=warehouse), run_budget_usd=5.0, daily_budget_usd=5.0,
                        price_table_path=prices)
    ledger = policy.ledger(run_id="killed", asset="k", backend=BackendConfig("braket.local.qubit", shots=100))
    ledger.admit(3, 100)
    Path(ready).write_text("reserved")
    time.sleep(600)  # the test kills this process here
""")


def test_the_reservation_of_a_killed_process_does_not_block_the_budget(tmp_path):
    policy = priced_policy(tmp_path, budget=5.0)
    ready = tmp_path / "ready"
    kill_when_ready([sys.executable, "-c", RESERVE_THEN_WAIT, str(policy.warehouse.file), policy.price_table_path,
                     str(ready)], ready, env={**os.environ, "PYTHONPATH": str(REPO)})
    with policy.ledger(run_id="next", asset="k", backend=LOCAL) as ledger:
        assert ledger.admit(3, SHOTS).usd == pytest.approx(3 * TASK_USD)  # the dead one's $3.90 was released


def test_make_device_refuses_a_paid_device_without_a_ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_PRICE_TABLE", str(priced_like_a_qpu(tmp_path, device="braket.local.qubit")))
    with pytest.raises(LedgerRequiredError, match=r"cost_policy\.ledger\(.*ledger=ledger"):
        make_device(LOCAL, 2)
    garnet = BackendConfig("braket.aws.qubit", shots=100,
                           device_options=(("device_arn", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"),))
    with pytest.raises(LedgerRequiredError, match="braket.aws.qubit is a paid device"):
        make_device(garnet, 2)
    make_device(BackendConfig(), 2)  # a free simulator needs none
    with priced_policy(tmp_path).ledger(run_id="r", asset="k", backend=LOCAL) as ledger:
        make_device(LOCAL, 2, ledger=ledger)


def test_the_vqc_admits_every_circuit_it_runs_its_test_predictions_included(data_layout, instance, tmp_path,
                                                                            monkeypatch):
    device = DeviceBoundary(monkeypatch)
    write_good_csv(data_layout.landing, n_rows=16, n_features=3, name="data.csv")
    ingest(instance, "data.csv")
    policy = priced_policy(tmp_path, warehouse=Warehouse())
    result = materialize(all_assets, selection=["features", "reduced_embeddings", "vqc_model"], instance=instance,
                         resources={**RESOURCES, "cost_policy": policy,
                                    "quantum_backend": QuantumBackend(device_name="braket.local.qubit", shots=20)},
                         run_config={"ops": {"reduced_embeddings": {"config": {"n_qubits": 2}},
                                             "vqc_model": {"config": {"layers": 1, "batch_size": 4, "epochs": 1,
                                                                      "restarts": 1}}}})
    metadata = result.asset_materializations_for_node("vqc_model")[0].metadata
    assert metadata["planned_circuits"].value == device.created == metadata["circuits_executed"].value
    assert recorded(policy.warehouse, result.run_id)[0] == device.created


def test_a_task_is_billed_its_shots_and_a_program_set_is_one_task_of_all_its_shots():
    from braket.circuits import Circuit
    from braket.program_sets import ProgramSet

    circuit = Circuit().h(0).cnot(0, 1)
    assert billed_task(circuit, 100) == (1, 100)
    assert billed_task(circuit, None) == (1, 0)  # an analytic local run: the task fee alone
    assert billed_task(ProgramSet([circuit, circuit, circuit], shots_per_executable=50), -1) == (3, 150)
