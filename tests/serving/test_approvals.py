"""Approvals name a verified person: every registry action is a statement signed with a listed
Ed25519 key (made here by ssh-keygen), handed in through ``hybrid-registry`` against a real
warehouse; unsigned, forged, expired or mismatched statements are refused with the reason and the
command that makes a valid one. Served artifacts are re-hashed when loaded."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from hybrid_assets.serving.jobs import registry
from hybrid_assets.serving.registry import draft_statement, registry_store
from hybrid_resources.approvals import sign_statement
from hybrid_resources.data.warehouse import Warehouse
from tests.conftest import RESOURCES
from tests.serving.test_serving import (
    land_scoring,
    predictions_of,
    registry_state,
    score,
    version_of,
)


def refused(signers, capsys, action: str, statement: Path) -> str:
    """Hand ``statement`` in; assert it was refused; return what hybrid-registry said."""
    capsys.readouterr()
    assert signers.hand_in(action, statement) == 2
    return capsys.readouterr().err


def signed_file(signers, statement: dict, *, key: str) -> Path:
    """``statement`` signed with ``key``'s private key, in a file (a statement the CLI would not draft)."""
    path = signers.folder / f"crafted-{statement['nonce']}.json"
    path.write_text(json.dumps(sign_statement(statement, signers.key(key))))
    return path


def approvals_of(version: str) -> list[dict]:
    with Warehouse().session(read_only=True) as session:
        return session.approvals(subject=f"promote:{version}")


def test_another_persons_signed_approval_promotes_once(trained, instance, signers, capsys):
    quantum, classical = version_of("quantum_svm"), version_of("classical_baseline")
    approval = signers.sign("approve", f"promote:{quantum}", by="alice", reason="shadow margin on 500 labels")
    assert signers.hand_in("approve", approval) == 0
    assert "already recorded" in refused(signers, capsys, "approve", approval)  # one statement, one approval
    request = signers.sign("promote", quantum, by="bob", reason="go live")
    assert signers.hand_in("promote", request) == 0
    assert registry_state()[quantum] == "champion" and registry_state()[classical] == "candidate"
    (recorded,) = approvals_of(quantum)
    assert (recorded["actor"], recorded["used_by"]) == ("alice", f"promote:{quantum}")
    assert json.loads(recorded["signed"])["statement"]["artifacts"] == {
        name: version for name, version in recorded_artifacts(quantum).items()}
    with Warehouse().session(read_only=True) as session:
        (event,) = [e for e in session.registry_events() if e["version_id"] == quantum and e["action"] == "promote"]
    assert event["actor"] == "bob" and f"approval {recorded['approval_id']} by alice" in event["reason"]

    # Back to the classical champion (made champion by the automation), then: the used approval
    # does not promote again, nor does the used request.
    assert signers.hand_in("rollback", signers.sign("rollback", by="bob", reason="latency regression")) == 0
    assert registry_state()[classical] == "champion"
    assert "already used" in refused(signers, capsys, "promote", request)
    said = refused(signers, capsys, "promote", signers.sign("promote", quantum, by="bob"))
    assert "no valid approval" in said and f"hybrid-registry sign approve promote:{quantum}" in said

    # No private key reaches the warehouse: only public statements and signatures.
    private = signers.key("alice").read_text().splitlines()[1]
    assert private.encode() not in Warehouse().file.read_bytes()


def recorded_artifacts(version: str) -> dict[str, str]:
    with Warehouse().session(read_only=True) as session:
        return next(m for m in session.models() if m["version_id"] == version)["artifacts"]


def test_unsigned_forged_expired_or_mismatched_approvals_are_refused_with_the_command(trained, signers, capsys):
    quantum = version_of("quantum_svm")
    good = json.loads(signers.sign("approve", f"promote:{quantum}", by="alice").read_text())
    forged = signers.folder / "forged.json"
    forged.write_text(json.dumps({**good, "statement": {**good["statement"], "reason": "Head of Risk says yes"}}))
    free_text = signers.folder / "free.txt"
    free_text.write_text("approved by Head of Risk")
    now = datetime.now(timezone.utc)
    draft = {"warehouse": Warehouse(), "store": registry_store(), "action": "approve", "target": f"promote:{quantum}",
             "signer": "alice", "reason": "test"}
    expired = draft_statement(**draft, expires_in="1h", now=now - timedelta(hours=2))
    other_hash = draft_statement(**draft)
    other_hash["artifacts"] = {**other_hash["artifacts"], "reduced_embeddings": "0" * 64}
    other_gates = draft_statement(**draft)
    other_gates["gates"] = {name: not passed for name, passed in other_gates["gates"].items()}
    cases = {
        "this is not a signed statement": free_text,
        "the signature is not alice's": forged,
        "the signature is not alice's (forged": signers.sign("approve", f"promote:{quantum}", by="alice", key="bob"),
        "'mallory' is not listed in the approvers file": signers.sign("approve", f"promote:{quantum}", by="mallory"),
        "bob's roles (operator) do not allow approve:promote": signers.sign("approve", f"promote:{quantum}", by="bob"),
        "the statement expired at": signed_file(signers, expired, key="alice"),
        f"its artifacts are not {quantum}'s current ones": signed_file(signers, other_hash, key="alice"),
        f"its gates are not {quantum}'s current ones": signed_file(signers, other_gates, key="alice"),
    }
    for reason, statement in cases.items():
        said = refused(signers, capsys, "approve", statement)
        assert reason in said, (reason, said)
        assert "hybrid-registry sign approve" in said and "hybrid-registry approve --statement" in said, said
    assert approvals_of(quantum) == [] and registry_state()[quantum] == "shadow"


def test_the_approver_cannot_be_the_requester_and_a_requester_needs_the_role(trained, signers, capsys):
    quantum = version_of("quantum_svm")
    assert signers.hand_in("approve", signers.sign("approve", f"promote:{quantum}", by="carol")) == 0
    said = refused(signers, capsys, "promote", signers.sign("promote", quantum, by="carol"))
    assert "carol approved it and cannot also be the requester" in said
    assert f"hybrid-registry sign approve promote:{quantum}" in said
    said = refused(signers, capsys, "promote", signers.sign("promote", quantum, by="alice"))
    assert "alice's roles (model_approver, hardware_approver) do not allow promote" in said
    assert f"hybrid-registry sign promote {quantum}" in said
    free_text = signers.folder / "promote.txt"
    free_text.write_text("promote it, signed: intern")
    assert "not a signed statement" in refused(signers, capsys, "promote", free_text)
    assert registry_state()[quantum] == "shadow" and approvals_of(quantum)[0]["used_by"] is None
    assert signers.hand_in("promote", signers.sign("promote", quantum, by="bob")) == 0  # carol's approval, bob asks
    assert registry_state()[quantum] == "champion"


def test_a_rollback_returns_only_to_an_approved_champion_that_is_not_retired(trained, signers, capsys):
    quantum, classical = version_of("quantum_svm"), version_of("classical_baseline")
    said = refused(signers, capsys, "rollback", signers.sign("rollback", quantum, by="bob"))
    assert f"{quantum} was never an approved champion" in said and f"hybrid-registry sign promote {quantum}" in said
    signers.approve_and_promote(quantum)
    with Warehouse().session() as session:  # the first (automation) champion is retired
        session.set_status(classical, "retired", action="retire", actor="alice", reason="superseded")
    said = refused(signers, capsys, "rollback", signers.sign("rollback", classical, by="bob"))
    assert f"{classical} is retired" in said
    assert registry_state()[quantum] == "champion"


def test_a_version_with_missing_gates_is_never_promoted(trained, signers, capsys):
    classical = version_of("classical_baseline")
    with Warehouse().session() as session:
        entry = next(m for m in session.models() if m["version_id"] == classical)
        session.register_model("classical_baseline@00000000gate", "classical_baseline", entry["kind"], "candidate",
                               artifacts=entry["artifacts"], metrics=entry["metrics"], gates={},
                               versions=entry["versions"], run_id="test")
    said = refused(signers, capsys, "approve", signers.sign("approve", "promote:classical_baseline@00000000gate",
                                                            by="alice"))
    assert "has no gate results, and missing gates count as failed" in said
    said = refused(signers, capsys, "promote", signers.sign("promote", "classical_baseline@00000000gate", by="bob"))
    assert "missing gates count as failed" in said
    assert registry_state()["classical_baseline@00000000gate"] == "candidate"


def test_a_tampered_model_file_never_scores(trained, instance, signers, capsys):
    classical = version_of("classical_baseline")
    (path,) = (trained.artifacts / "classical_baseline" / recorded_artifacts(classical)["classical_baseline"]).glob(
        "value.npz")
    with np.load(path, allow_pickle=False) as bundle:
        arrays = {name: bundle[name] for name in bundle.files}
    name = next(name for name, array in arrays.items() if array.dtype.kind == "f")
    arrays[name] = arrays[name] * -1.0  # same shapes, opposite decisions
    np.savez(path.with_suffix(""), **arrays)
    result = score(instance, land_scoring(trained, "after_tamper.csv"))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "was changed or swapped after it was written" in str(failure.message) + str(failure.cause)
    assert predictions_of("after_tamper.csv").height == 0
    assert not (trained.predictions / "after_tamper.csv.parquet").exists()


def test_the_launchpad_takes_only_a_signed_statement(trained, instance, signers):
    quantum = version_of("quantum_svm")

    def launch(action: str, statement: str):
        return registry.execute_in_process(instance=instance, resources=RESOURCES, raise_on_error=False, run_config={
            "ops": {"registry_action": {"config": {"action": action, "statement": statement}}}})

    unsigned = launch("approve", "approved by Head of Risk")
    assert not unsigned.success
    failure = next(e for e in unsigned.all_events if e.is_step_failure).step_failure_data.user_failure_data
    assert "not a signed statement" in failure.description and "hybrid-registry sign approve" in failure.description
    assert approvals_of(quantum) == []
    approval = signers.sign("approve", f"promote:{quantum}", by="alice").read_text()
    assert launch("approve", approval).success
    assert not launch("promote", approval).success  # an approval is not a promotion request
    assert launch("promote", signers.sign("promote", quantum, by="bob").read_text()).success
    assert registry_state()[quantum] == "champion"
