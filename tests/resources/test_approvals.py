"""Signed statements on their own: keys from ssh-keygen, the approvers file, the checks of
:func:`verify_signed` one by one, and an artifact re-hashed on read."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from hybrid_resources.approvals import (
    Approvers,
    StatementRefused,
    canonical,
    parse_duration,
    read_signed,
    sign_statement,
    statement_id,
    timestamp,
    verify_signed,
)
from hybrid_resources.data.artifacts import (
    ArtifactIntegrityError,
    ArtifactStore,
    content_hash,
)
from tests.conftest import make_signers

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)


def statement(**changes) -> dict:
    base = {"action": "approve", "subject": "promote:quantum_svm@abc", "version": "quantum_svm@abc",
            "artifacts": {"quantum_svm": "a" * 64}, "gates": {"margin": True}, "reason": "r", "signer": "alice",
            "issued_at": timestamp(NOW), "expires_at": timestamp(NOW + timedelta(hours=1)), "nonce": "n"}
    return {**base, **changes}


@pytest.fixture
def keys(tmp_path):
    signers = make_signers(tmp_path / "keys")
    return signers, Approvers.from_json(signers.file.read_text(), source=str(signers.file))


def test_a_statement_signed_with_the_listed_key_verifies_and_its_bytes_are_canonical(keys):
    signers, approvers = keys
    signed = sign_statement(statement(), signers.key("alice"))
    assert verify_signed(read_signed(json.dumps(signed)), approvers, now=NOW) == statement()
    reordered = dict(reversed(list(statement().items())))
    assert canonical(reordered) == canonical(statement()) and statement_id(signed) == statement_id(
        {"statement": reordered})


@pytest.mark.parametrize("signed_by, changes, now, refusal", [
    ("alice", {"reason": "changed"}, NOW, "the signature is not alice's"),
    ("bob", {}, NOW, "the signature is not alice's"),
    ("mallory", {"signer": "mallory"}, NOW, "'mallory' is not listed"),
    ("bob", {"signer": "bob"}, NOW, "bob's roles (operator) do not allow approve:promote"),
    ("alice", {}, NOW + timedelta(hours=2), "the statement expired at"),
    ("alice", {"expires_at": timestamp(NOW + timedelta(days=8))}, NOW, "is not within now and 7 days"),
    ("alice", {"issued_at": timestamp(NOW + timedelta(hours=1)), "expires_at": timestamp(NOW + timedelta(hours=2))},
     NOW, "is not within now and 7 days"),
])
def test_each_check_refuses_with_its_reason(keys, signed_by, changes, now, refusal):
    signers, approvers = keys
    if "reason" in changes:  # altered after it was signed
        signed = sign_statement(statement(), signers.key(signed_by))
        signed["statement"] = statement(**changes)
    else:
        signed = sign_statement(statement(**changes), signers.key(signed_by))
    with pytest.raises(StatementRefused, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        verify_signed(signed, approvers, now=now)


@pytest.mark.parametrize("text", ["approved by Head of Risk", "{}", json.dumps({"statement": {}, "signature": "x"})])
def test_free_text_or_an_incomplete_statement_is_not_a_signed_statement(text):
    with pytest.raises(StatementRefused):
        read_signed(text)


def test_the_approvers_file_lists_ed25519_keys_only_and_reserves_automation(keys, tmp_path, monkeypatch):
    signers, _ = keys
    listed = json.loads(signers.file.read_text())
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "ecdsa")], check=True)
    ecdsa = {"people": {"eve": {"key": (tmp_path / "ecdsa.pub").read_text(), "roles": ["operator"]}}}
    with pytest.raises(StatementRefused, match="not an ssh-ed25519 key"):
        Approvers.from_json(json.dumps(ecdsa))
    with pytest.raises(StatementRefused, match="'automation' is the registry's own actor"):
        Approvers.from_json(json.dumps({"people": {"automation": listed["people"]["alice"]}}))
    monkeypatch.delenv("HYBRID_APPROVERS_FILE", raising=False)
    with pytest.raises(StatementRefused, match="no approvers are configured: set HYBRID_APPROVERS_FILE"):
        Approvers.from_env()
    monkeypatch.setenv("HYBRID_APPROVERS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(StatementRefused, match="cannot be read"):
        Approvers.from_env()


def test_a_passphrase_protected_key_signs_with_its_passphrase_only(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(tmp_path / "locked")],
                   check=True)
    with pytest.raises(TypeError):  # no passphrase given: the CLI then asks for it
        sign_statement(statement(), tmp_path / "locked")
    with pytest.raises(StatementRefused, match="a wrong passphrase"):
        sign_statement(statement(), tmp_path / "locked", password=b"wrong horse")
    signed = sign_statement(statement(), tmp_path / "locked", password=b"correct horse")
    public = load_ssh_public_key((tmp_path / "locked.pub").read_bytes())
    public.verify(base64.b64decode(signed["signature"]), canonical(signed["statement"]))  # raises if not hers
    assert "PRIVATE" not in json.dumps(signed)


def test_durations():
    assert parse_duration("90m") == timedelta(minutes=90) and parse_duration("7d") == timedelta(days=7)
    with pytest.raises(StatementRefused, match="like 90m, 24h, 7d"):
        parse_duration("tomorrow")


def test_a_stored_artifact_is_re_hashed_when_read_verified(tmp_path):
    store = ArtifactStore(tmp_path)
    value = {"w": np.arange(4.0)}
    version = content_hash(value)
    path = store.write(["model"], value, version=version)
    assert np.array_equal(store.read_verified(["model"], version)["w"], value["w"])
    np.savez(path.with_suffix(""), w=np.arange(4.0) * -1)
    with pytest.raises(ArtifactIntegrityError, match=f"model version {version[:12]} .* was changed or swapped"):
        store.read_verified(["model"], version)
