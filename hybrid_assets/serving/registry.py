"""The model registry: which version serves, which one shadows it, how it got there, who approved.

Versions live in the warehouse (``model_registry``), each with the content-addressed artifacts it
needs to score (pinned against retention), its metrics, gate verdicts and versions. Every change
of status is an event (who, when, why). Statuses: ``candidate``, ``shadow`` (scores alongside the
champion, never acted on), ``champion`` (decides), ``retired``.

- After an evaluation the classical baseline and the quantum model are registered; the first
  classical version becomes champion by itself (actor ``automation``), so scoring works with no
  click; a quantum model whose promotion gates passed becomes ``shadow``.
- Every action a person takes is a statement signed with their listed Ed25519 key
  (:mod:`hybrid_resources.approvals`; ``hybrid-registry sign``): an approval (``approve``) of
  ``promote:<version>`` or ``hardware_evaluation``, bound to that version's artifact hashes and
  gate results; a request to ``promote``, ``rollback`` or ``launch`` the paid hardware job.
- Promotion to champion needs the requester's signed request and an unused approval signed by
  someone else whose role allows it, unexpired, for the version's current artifacts and gates;
  a version with missing or failed gates is never promoted. So does every paid hardware run.
  A refusal says why and gives the command that makes a valid statement.
- A rollback re-points the champion to an earlier champion that was approved (or made champion
  by the automation's first-classical rule) and is not retired, without recomputing anything.

``hybrid-registry list | show VERSION | sign ACTION TARGET | approve|promote|rollback --statement FILE``
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from hybrid_resources.approvals import (
    Approvers,
    StatementRefused,
    parse_duration,
    read_signed,
    statement_id,
    timestamp,
    verify_signed,
)
from hybrid_resources.data.artifacts import ArtifactIntegrityError, ArtifactStore
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.data.warehouse import Warehouse, WarehouseSession

SERVABLE = ("classical_baseline", "quantum_svm")
HARDWARE_SUBJECT = "hardware_evaluation"
# Default lifetimes of the statements ``hybrid-registry sign`` makes (--expires-in overrides them).
STATEMENT_LIFETIME = {"approve": "24h", "promote": "1h", "rollback": "1h", "launch": "1h"}
AUTOMATION = "automation"  # the actor of the first classical champion (never a person's name)


class RegistryError(RuntimeError):
    """A registry action that cannot be done (the message says why and what to do)."""


def registry_store() -> ArtifactStore:
    """Where the registered versions' artifacts are stored (``$HYBRID_DATA_DIR/artifacts``)."""
    return ArtifactStore.at(DataLayout.from_env().artifacts)


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
            session.set_status(vid, "candidate", action="register", actor=AUTOMATION, reason="evaluated")
            for name, data_version in artifacts.items():
                store.pin([name], data_version, holder=f"registry:{vid}")
            registered.append(vid)
            if asset == "classical_baseline" and not session.models(status="champion"):
                session.set_status(vid, "champion", action="promote", actor=AUTOMATION,
                                   reason="the first evaluated classical model serves until another is approved")
            elif asset == "quantum_svm" and report.get("promotable"):
                session.set_status(vid, "shadow", action="shadow", actor=AUTOMATION,
                                   reason="every promotion gate passed; it scores in shadow until approved")
    return registered


def headline_metric(metrics: dict[str, float]) -> tuple[str, float]:
    """The holdout metric a listing shows for a version: ``accuracy`` for a classifier, ``r2`` for a
    regressor (registered metrics carry whatever keys the model's task has; NaN when absent)."""
    name = "r2" if "r2" in metrics and "accuracy" not in metrics else "accuracy"
    return name, float(metrics.get(name, float("nan")))


def champion(session: WarehouseSession) -> dict[str, Any] | None:
    found = session.models(status="champion")
    return found[0] if found else None


def find(session: WarehouseSession, vid: str) -> dict[str, Any]:
    for entry in session.models():
        if entry["version_id"] == vid:
            return entry
    known = ", ".join(entry["version_id"] for entry in session.models()[:10]) or "none yet"
    raise RegistryError(f"no model version {vid!r} in the registry (known: {known}); see `hybrid-registry list`")


def how_to_sign(action: str, target: str) -> str:
    """The commands that make a valid signed statement for ``action`` on ``target`` and hand it in."""
    out = f"{action}.json"
    sign = (f"`hybrid-registry sign {action} {target} --key ~/.ssh/id_ed25519 --as YOUR_NAME --reason WHY "
            f"--expires-in {STATEMENT_LIFETIME[action]} --out {out}`")
    if action == "launch":
        return f"make one with {sign} and paste the file's JSON into the hardware job's `request` setting"
    return (f"make one with {sign}, then `hybrid-registry {action} --statement {out}` (or paste the file's JSON "
            f"into the `registry` job's launchpad with action '{action}')")


def hardware_entry(promoted_model: dict[str, Any]) -> dict[str, Any]:
    """What a hardware approval is bound to: the promoted quantum model the hardware job evaluates,
    its artifact versions and gate results (shaped like a registry entry)."""
    return {"version_id": version_id("quantum_svm", promoted_model["model_data_version"]), "asset": "quantum_svm",
            "artifacts": scoring_artifacts("quantum_svm", promoted_model),
            "gates": {name: gate["passed"] for name, gate in promoted_model["gates"].items()}}


def latest_promoted_model(store: ArtifactStore) -> dict[str, Any]:
    """The latest ``promoted_model`` (what the hardware job evaluates next)."""
    try:
        return store.read(["promoted_model"])
    except FileNotFoundError as missing:
        raise RegistryError("no promoted_model yet: the hardware job evaluates the promoted quantum model") from missing


def previous_champion(session: WarehouseSession) -> str:
    """The version that was champion before the current one (the default rollback target)."""
    current = champion(session)
    earlier = [e["version_id"] for e in session.registry_events()
               if e["to_status"] == "champion" and (current is None or e["version_id"] != current["version_id"])]
    if not earlier:
        raise RegistryError("no earlier champion to roll back to; name a version: sign rollback VERSION")
    return earlier[-1]


def statement_target(warehouse: Warehouse, store: ArtifactStore, action: str,
                     target: str) -> tuple[str, dict[str, Any]]:
    """The subject a statement of ``action`` on ``target`` names, and the version entry it is bound to."""
    if target == HARDWARE_SUBJECT and action in ("approve", "launch"):
        return target, hardware_entry(latest_promoted_model(store))
    with warehouse.session(read_only=True) as session:
        if action == "approve" and target.startswith("promote:"):
            return target, find(session, target.split(":", 1)[1])
        if action in ("promote", "rollback") and target != HARDWARE_SUBJECT:
            version = target or (previous_champion(session) if action == "rollback" else "")
            return version, find(session, version)
    raise RegistryError(f"cannot sign {action} {target!r}: approve promote:<version> or {HARDWARE_SUBJECT}; "
                        f"promote <version>; rollback [<version>]; launch {HARDWARE_SUBJECT}")


def draft_statement(warehouse: Warehouse, store: ArtifactStore, action: str, target: str, *, signer: str,
                    reason: str, expires_in: str = "", now: datetime | None = None) -> dict[str, Any]:
    """The statement ``hybrid-registry sign`` signs: ``signer`` does ``action`` on ``target``, bound to
    the version's current artifact hashes and gate results, for ``expires_in`` (default per action).

    ``approve promote:<version>`` | ``approve hardware_evaluation`` | ``promote <version>`` |
    ``rollback [<version>]`` (default: the previous champion) | ``launch hardware_evaluation``."""
    if not signer.strip() or not reason.strip():
        raise RegistryError("a statement needs who signs it (--as) and why (--reason)")
    if action not in STATEMENT_LIFETIME:
        raise RegistryError(f"cannot sign {action!r}: sign approve, promote, rollback or launch")
    subject, entry = statement_target(warehouse, store, action, target)
    now = now or datetime.now(timezone.utc)
    try:
        lifetime = parse_duration(expires_in or STATEMENT_LIFETIME[action])
    except StatementRefused as refusal:
        raise RegistryError(str(refusal)) from refusal
    return {"action": action, "subject": subject, "version": entry["version_id"], "artifacts": entry["artifacts"],
            "gates": entry["gates"], "reason": reason, "signer": signer, "issued_at": timestamp(now),
            "expires_at": timestamp(now + lifetime), "nonce": uuid.uuid4().hex}


def accepted(signed: str | dict[str, Any], approvers: Approvers, action: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The signed statement and its verified statement, for ``action``; refuses free text, an unknown
    signer, a forged signature, a role that does not allow it, an expired one, another action."""
    text = signed if isinstance(signed, str) else json.dumps(signed)
    try:
        hinted = json.loads(text)["statement"]["subject"]
    except (ValueError, KeyError, TypeError):
        hinted = "TARGET"
    try:
        signed = read_signed(text)
        statement = verify_signed(signed, approvers)
        if statement["action"] != action:
            raise StatementRefused(f"it is a signed {statement['action']!r} statement, not {action!r}")
    except StatementRefused as refusal:
        raise RegistryError(f"refused: {refusal}; {how_to_sign(action, str(hinted))}") from refusal
    return signed, statement


def refuse_unbound(statement: dict[str, Any], entry: dict[str, Any]) -> None:
    """Refuse a statement that was not signed for ``entry``'s current artifact hashes and gates."""
    vid = entry["version_id"]
    if statement.get("version") != vid:
        raise StatementRefused(f"it was signed for {statement.get('version')!r}, not {vid}")
    for field in ("artifacts", "gates"):
        if statement.get(field) != entry[field]:
            raise StatementRefused(f"its {field} are not {vid}'s current ones (they changed since it was signed)")


def refuse_failed_gates(entry: dict[str, Any]) -> None:
    """Missing gates count as failed: a version without gate results is never promoted, and a
    quantum model needs every gate passed (the gates judge the quantum model against the classical)."""
    vid = entry["version_id"]
    if not entry["gates"]:
        raise RegistryError(f"{vid} has no gate results, and missing gates count as failed: re-run "
                            "model_evaluation so the version is registered with its gates")
    failed = sorted(name for name, passed in entry["gates"].items() if passed is not True)
    if entry["asset"] == "quantum_svm" and failed:
        raise RegistryError(f"{vid} failed its promotion gates ({', '.join(failed)}): a quantum model becomes "
                            "champion only through its gates and an approval; see model_evaluation")


def approve(warehouse: Warehouse, signed: str | dict[str, Any], approvers: Approvers, store: ArtifactStore) -> str:
    """Record a signed approval of ``promote:<version>`` or ``hardware_evaluation`` (the latest
    promoted model) once it is verified (signer, signature, role, lifetime) and bound to the
    version's current artifacts and gates; returns its id (the statement's), recorded once."""
    signed, statement = accepted(signed, approvers, "approve")
    subject = statement["subject"]
    if subject not in (HARDWARE_SUBJECT, f"promote:{statement.get('version')}"):
        raise RegistryError(f"refused: cannot approve {subject!r} for version {statement.get('version')!r}; "
                            f"{how_to_sign('approve', 'promote:VERSION')}")
    approval_id = statement_id(signed)
    with warehouse.session() as session:
        entry = (hardware_entry(latest_promoted_model(store)) if subject == HARDWARE_SUBJECT
                 else find(session, statement["version"]))
        try:
            refuse_unbound(statement, entry)
        except StatementRefused as refusal:
            raise RegistryError(f"refused: {refusal}; {how_to_sign('approve', subject)}") from refusal
        if subject != HARDWARE_SUBJECT:
            refuse_failed_gates(entry)
        if any(a["approval_id"] == approval_id for a in session.approvals(subject=subject)):
            raise RegistryError(f"approval {approval_id} is already recorded; one signed statement approves once")
        session.add_approval(approval_id, subject, statement["signer"], statement["reason"],
                             signed=json.dumps(signed, sort_keys=True))
    return approval_id


def approval_problem(approval: dict[str, Any], entry: dict[str, Any], requester: str,
                     approvers: Approvers) -> str | None:
    """Why a recorded approval cannot be used now for ``entry`` by ``requester`` (None: it can)."""
    if not approval.get("signed"):
        return "unsigned (recorded before approvals were signed)"
    try:
        statement = verify_signed(read_signed(approval["signed"]), approvers)
        refuse_unbound(statement, entry)
    except StatementRefused as refusal:
        return str(refusal)
    if statement["signer"] == requester:
        return f"{requester} approved it and cannot also be the requester"
    return None


def consume_approval(session: WarehouseSession, subject: str, *, entry: dict[str, Any], requester: str,
                     approvers: Approvers, used_by: str) -> dict[str, Any]:
    """The oldest unused approval of ``subject`` that is valid now for ``entry`` and signed by someone
    other than ``requester``, now marked used by ``used_by``; refuses with each one's reason."""
    refusals = []
    for approval in session.approvals(subject=subject, unused=True):
        problem = approval_problem(approval, entry, requester, approvers)
        if problem is None:
            session.use_approval(approval["approval_id"], used_by)
            return approval
        refusals.append(f"approval {approval['approval_id']} by {approval['actor']}: {problem}")
    raise RegistryError(f"refused: {subject} has no valid approval for {entry['version_id']} "
                        f"({'; '.join(refusals) or 'none recorded'}); {how_to_sign('approve', subject)}; "
                        f"it must be signed by someone other than the requester ({requester})")


def refuse_reused(session: WarehouseSession, request_id: str) -> None:
    """One signed request, one action: refuse a request already recorded in an event."""
    if any(f"(request {request_id};" in event["reason"] for event in session.registry_events()):
        raise RegistryError(f"refused: request {request_id} was already used; sign a new one")


def verify_stored_artifacts(store: ArtifactStore, entry: dict[str, Any]) -> None:
    """Re-hash each artifact ``entry`` names; refuses when a stored file no longer holds its version."""
    try:
        for name, version in entry["artifacts"].items():
            store.read_verified([name], version)
    except (ArtifactIntegrityError, FileNotFoundError) as error:
        raise RegistryError(f"refused: {entry['version_id']}: {error}") from error


def promote(warehouse: Warehouse, signed: str | dict[str, Any], approvers: Approvers,
            store: ArtifactStore) -> dict[str, Any]:
    """Make the version of a signed ``promote`` request the champion (the current one becomes a
    candidate), after its gates, its stored artifacts and another person's approval check out."""
    signed, request = accepted(signed, approvers, "promote")
    vid, requester, request_id = request["subject"], request["signer"], statement_id(signed)
    with warehouse.session() as session:
        entry = find(session, vid)
        if entry["status"] in ("champion", "retired"):
            raise RegistryError(f"{vid} is {'already the champion' if entry['status'] == 'champion' else 'retired'}")
        refuse_failed_gates(entry)
        try:
            refuse_unbound(request, entry)
        except StatementRefused as refusal:
            raise RegistryError(f"refused: {refusal}; {how_to_sign('promote', vid)}") from refusal
        refuse_reused(session, request_id)
        verify_stored_artifacts(store, entry)
        with session.transaction():
            approval = consume_approval(session, f"promote:{vid}", entry=entry, requester=requester,
                                        approvers=approvers, used_by=f"promote:{vid}")
            current = champion(session)
            if current is not None:
                session.set_status(current["version_id"], "candidate", action="demote", actor=requester,
                                   reason=f"replaced by {vid}")
            session.set_status(vid, "champion", action="promote", actor=requester,
                               reason=f"{request['reason']} (request {request_id}; approval "
                                      f"{approval['approval_id']} by {approval['actor']})")
    return approval


def was_approved_champion(session: WarehouseSession, vid: str) -> bool:
    """Whether ``vid`` became champion through a used signed approval, or by the automation's
    first-classical-champion rule."""
    by_automation = any(e["version_id"] == vid and e["to_status"] == "champion" and e["action"] == "promote"
                        and e["actor"] == AUTOMATION for e in session.registry_events())
    return by_automation or any(a["used_by"] == f"promote:{vid}" and a.get("signed")
                                for a in session.approvals(subject=f"promote:{vid}"))


def rollback(warehouse: Warehouse, signed: str | dict[str, Any], approvers: Approvers) -> str:
    """Re-point the champion to the version of a signed ``rollback`` request: an earlier champion
    that was approved and is not retired. Nothing is recomputed: the next scoring run loads that
    version's stored artifacts (re-hashed when loaded)."""
    signed, request = accepted(signed, approvers, "rollback")
    to, requester, request_id = request["subject"], request["signer"], statement_id(signed)
    with warehouse.session() as session:
        current, target = champion(session), find(session, to)
        if current is not None and current["version_id"] == to:
            raise RegistryError(f"{to} is already the champion")
        if target["status"] == "retired":
            raise RegistryError(f"refused: {to} is retired; a rollback never returns to a retired version")
        if not was_approved_champion(session, to):
            raise RegistryError(f"refused: {to} was never an approved champion: a rollback returns to an earlier "
                                f"approved champion; to make a new version champion, {how_to_sign('promote', to)}")
        try:
            refuse_unbound(request, target)
        except StatementRefused as refusal:
            raise RegistryError(f"refused: {refusal}; {how_to_sign('rollback', to)}") from refusal
        refuse_reused(session, request_id)
        reason = f"{request['reason']} (request {request_id}; rollback)"
        with session.transaction():
            if current is not None:
                session.set_status(current["version_id"], "candidate", action="rollback", actor=requester,
                                   reason=reason)
            session.set_status(to, "champion", action="rollback", actor=requester, reason=reason)
    return to


def describe(warehouse: Warehouse) -> dict[str, Any]:
    """Every version, every event and every approval (for the CLI and the audit)."""
    with warehouse.session(read_only=True) as session:
        return {"models": session.models(), "events": session.registry_events(), "approvals": session.approvals()}


def history(warehouse: Warehouse, *, versions: set[str], run_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """What the registry recorded about these model versions (status, every event, the approvals of
    their promotion) and the approvals these runs used (paid hardware runs), JSON-safe."""
    if not warehouse.exists():
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


def authorize_hardware_run(warehouse: Warehouse, store: ArtifactStore, request: str, approvers: Approvers, *,
                           promoted_model: dict[str, Any], run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """For one paid hardware run of ``promoted_model``: the verified signed ``launch`` request and
    the approval it consumes (another person's, bound to that model, one per run)."""
    _, statement = accepted(request, approvers, "launch")
    entry = hardware_entry(promoted_model)
    try:
        refuse_unbound(statement, entry)
    except StatementRefused as refusal:
        raise RegistryError(f"refused: the launch request {refusal}; {how_to_sign('launch', HARDWARE_SUBJECT)}") \
            from refusal
    verify_stored_artifacts(store, entry)
    with warehouse.session() as session:
        approval = consume_approval(session, HARDWARE_SUBJECT, entry=entry, requester=statement["signer"],
                                    approvers=approvers, used_by=run_id)
    return statement, approval
