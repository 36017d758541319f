"""The model registry: which version serves, which one shadows it, how it got there, who approved.

Versions live in the warehouse (``model_registry``), each with the content-addressed artifacts it
needs to score (pinned against retention), its metrics, gate verdicts and versions. Every change
of status is an event (who, when, why). Statuses: ``candidate``, ``shadow`` (scores alongside the
champion, never acted on), ``champion`` (decides), ``retired``.

- After an evaluation the classical baseline and the quantum model are registered; the first
  classical version becomes champion by itself, so scoring works with no click; a quantum model
  whose promotion gates passed becomes ``shadow``.
- Promotion to champion needs an approval record (:func:`approve`), given from the CLI
  (``hybrid-registry approve``) or the ``registry`` job's launchpad; so does every paid hardware
  job. An action without one is refused with a message that says how to approve.
- A rollback re-points the champion to an earlier version, without recomputing anything; the
  next scoring run uses it.

``hybrid-registry list | show VERSION | promote VERSION | rollback [VERSION] | approve SUBJECT``
"""

from __future__ import annotations

import uuid
from typing import Any

from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.warehouse import Warehouse, WarehouseSession

SERVABLE = ("classical_baseline", "quantum_svm")
HARDWARE_SUBJECT = "hardware_evaluation"


class RegistryError(RuntimeError):
    """A registry action that cannot be done (the message says why and what to do)."""


def version_id(asset: str, data_version: str) -> str:
    return f"{asset}@{data_version[:12]}"


def scoring_artifacts(asset: str, report: dict) -> dict[str, str]:
    """The artifact versions a model needs to score new rows: itself, the embedding it was trained
    on, and for the quantum model its circuit."""
    inputs = report["inputs"]
    needed = {"classical_baseline": ("classical_baseline", "reduced_embeddings"),
              "quantum_svm": ("quantum_svm", "reduced_embeddings", "circuit_artifact")}[asset]
    return {name: inputs[name] for name in needed}


def register_evaluation(warehouse: Warehouse, store: ArtifactStore, report: dict, *, run_id: str,
                        code_versions: dict[str, str] | None = None) -> list[str]:
    """Register the evaluated models; returns the version ids registered now (known ones are skipped).

    The classical baseline becomes champion when there is none; a quantum model whose promotion
    gates all passed becomes ``shadow``. Each version's artifacts are pinned in ``store``.
    """
    registered = []
    with warehouse.session() as session:
        for asset in SERVABLE:
            info = report["models"][asset]
            if info.get("degraded"):
                continue
            vid = version_id(asset, report["inputs"][asset])
            artifacts = scoring_artifacts(asset, report)
            gates = {name: gate["passed"] for name, gate in report["gates"].items()}
            kind = info.get("kind", "quantum_kernel_svm")
            versions = {"data": report["inputs"]["reduced_embeddings"], "circuit": report["inputs"]["circuit_artifact"],
                        "code": (code_versions or {}).get(asset, "")}
            if not session.register_model(vid, asset, kind, "candidate", artifacts=artifacts,
                                          metrics=report["metrics"][asset], gates=gates, versions=versions,
                                          run_id=run_id):
                continue
            session.set_status(vid, "candidate", action="register", actor="automation", reason="evaluated")
            for name, data_version in artifacts.items():
                store.pin([name], data_version, holder=f"registry:{vid}")
            registered.append(vid)
            if asset == "classical_baseline" and not session.models(status="champion"):
                session.set_status(vid, "champion", action="promote", actor="automation",
                                   reason="the first evaluated classical model serves until another is approved")
            elif asset == "quantum_svm" and report.get("promotable"):
                session.set_status(vid, "shadow", action="shadow", actor="automation",
                                   reason="every promotion gate passed; it scores in shadow until approved")
    return registered


def champion(session: WarehouseSession) -> dict[str, Any] | None:
    found = session.models(status="champion")
    return found[0] if found else None


def find(session: WarehouseSession, vid: str) -> dict[str, Any]:
    for entry in session.models():
        if entry["version_id"] == vid:
            return entry
    known = ", ".join(entry["version_id"] for entry in session.models()[:10]) or "none yet"
    raise RegistryError(f"no model version {vid!r} in the registry (known: {known}); see `hybrid-registry list`")


def approve(warehouse: Warehouse, subject: str, *, actor: str, reason: str) -> str:
    """Record an approval (who, when, why) for ``subject``: ``promote:<version>`` or ``hardware_evaluation``."""
    if not actor.strip() or not reason.strip():
        raise RegistryError("an approval needs who gives it (--by) and why (--reason)")
    if not (subject == HARDWARE_SUBJECT or subject.startswith("promote:")):
        raise RegistryError(f"cannot approve {subject!r}: approve 'promote:<version>' or '{HARDWARE_SUBJECT}'")
    approval_id = uuid.uuid4().hex[:12]
    with warehouse.session() as session:
        if subject.startswith("promote:"):
            find(session, subject.split(":", 1)[1])
        session.add_approval(approval_id, subject, actor, reason)
    return approval_id


def how_to_approve(subject: str) -> str:
    return (f"approve it first: `hybrid-registry approve {subject} --by YOUR_NAME --reason WHY`, "
            f"or launch the `registry` job with action 'approve' and subject '{subject}' from the launchpad")


def consume_approval(session: WarehouseSession, subject: str, *, used_by: str) -> dict[str, Any]:
    """The oldest unused approval of ``subject``, now marked used by ``used_by``; refuses without one."""
    unused = session.approvals(subject=subject, unused=True)
    if not unused:
        raise RegistryError(f"refused: {subject} has no approval; {how_to_approve(subject)}")
    session.use_approval(unused[0]["approval_id"], used_by)
    return unused[0]


def promote(warehouse: Warehouse, vid: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Make ``vid`` the champion (the current one becomes a candidate); needs an approval."""
    with warehouse.session() as session:
        entry = find(session, vid)
        if entry["status"] == "champion":
            raise RegistryError(f"{vid} is already the champion")
        if entry["status"] == "retired":
            raise RegistryError(f"{vid} is retired; register a new version instead")
        failed = sorted(name for name, passed in entry["gates"].items() if not passed)
        if entry["asset"] == "quantum_svm" and failed:
            raise RegistryError(f"{vid} failed its promotion gates ({', '.join(failed)}): a quantum model becomes "
                                "champion only through its gates and an approval; see model_evaluation")
        with session.transaction():
            approval = consume_approval(session, f"promote:{vid}", used_by=f"promote:{vid}")
            current = champion(session)
            if current is not None:
                session.set_status(current["version_id"], "candidate", action="demote", actor=actor,
                                   reason=f"replaced by {vid}")
            session.set_status(vid, "champion", action="promote", actor=actor,
                               reason=f"{reason} (approval {approval['approval_id']} by {approval['actor']})")
    return approval


def rollback(warehouse: Warehouse, *, actor: str, reason: str, to: str | None = None) -> str:
    """Re-point the champion to ``to`` or, by default, the version that was champion before it.
    Nothing is recomputed: the next scoring run loads that version's stored artifacts."""
    if not actor.strip() or not reason.strip():
        raise RegistryError("a rollback needs who does it (--by) and why (--reason)")
    with warehouse.session() as session:
        current = champion(session)
        if to is None:
            earlier = [e["version_id"] for e in session.registry_events()
                       if e["to_status"] == "champion" and (current is None or e["version_id"] != current["version_id"])]
            if not earlier:
                raise RegistryError("no earlier champion to roll back to; name a version: rollback VERSION")
            to = earlier[-1]
        target = find(session, to)
        if current is not None and current["version_id"] == to:
            raise RegistryError(f"{to} is already the champion")
        if not any(e["version_id"] == to and e["to_status"] == "champion" for e in session.registry_events()):
            raise RegistryError(f"{to} was never the champion: a rollback returns to an earlier champion; "
                                f"to make a new version champion, approve and promote it")
        with session.transaction():
            if current is not None:
                session.set_status(current["version_id"], "candidate", action="rollback", actor=actor, reason=reason)
            session.set_status(target["version_id"], "champion", action="rollback", actor=actor, reason=reason)
    return to


def describe(warehouse: Warehouse) -> dict[str, Any]:
    """Every version, every event and every approval (for the CLI and the audit)."""
    with warehouse.session(read_only=True) as session:
        return {"models": session.models(), "events": session.registry_events(), "approvals": session.approvals()}


def history(warehouse: Warehouse, *, versions: set[str], run_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """What the registry recorded about these model versions (status, every event, the approvals of
    their promotion) and the approvals these runs used (paid hardware runs), JSON-safe."""
    if not warehouse.file.exists():
        return {"models": [], "events": [], "approvals": []}
    everything = describe(warehouse)
    subjects = {f"promote:{vid}" for vid in versions}

    def plain(row: dict[str, Any]) -> dict[str, Any]:
        return {key: value if value is None or isinstance(value, (str, int, float, bool, dict, list)) else str(value)
                for key, value in row.items()}

    return {
        "models": [plain({key: entry[key] for key in ("version_id", "asset", "status", "registered_at", "gates")})
                   for entry in everything["models"] if entry["version_id"] in versions],
        "events": [plain(event) for event in everything["events"] if event["version_id"] in versions],
        "approvals": [plain(approval) for approval in everything["approvals"]
                      if approval["subject"] in subjects or approval["used_by"] in run_ids],
    }
