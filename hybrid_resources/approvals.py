"""Signed statements: who approves or asks for a registry action, verified against listed keys.

A person is listed in the approvers file (``$HYBRID_APPROVERS_FILE``, JSON) with an OpenSSH
Ed25519 public key and roles; a role names the actions it allows::

    {"people": {"alice": {"key": "ssh-ed25519 AAAA... alice@laptop", "roles": ["model_approver"]},
                "bob":   {"key": "ssh-ed25519 AAAA... bob@laptop",   "roles": ["operator"]}},
     "roles": {"model_approver": ["approve:promote"]}}            # optional: overrides DEFAULT_ROLES

A statement is a JSON object (what, about which artifacts and gates, why, by whom, issued and
expiring when); its signature is Ed25519 over ``DOMAIN`` + the statement's canonical JSON (sorted
keys, no spaces). A signed statement travels as ``{"statement": {...}, "signature": "<base64>"}``.
Private keys are read only to sign, on the signer's machine; nothing here stores or prints them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    load_ssh_private_key,
    load_ssh_public_key,
)

APPROVERS_ENV = "HYBRID_APPROVERS_FILE"
DOMAIN = b"hybrid-registry statement v1\n"
# What each role allows, unless the approvers file says otherwise. A permission is the statement's
# action, and for an approval what it approves: approve:promote, approve:hardware_evaluation.
DEFAULT_ROLES: dict[str, list[str]] = {
    "model_approver": ["approve:promote"],
    "hardware_approver": ["approve:hardware_evaluation"],
    "operator": ["promote", "rollback", "launch:hardware_evaluation"],
}
RESERVED_NAME = "automation"  # the registry's own actor (the first classical champion)
MAX_LIFETIME = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=5)
_FIELDS = ("action", "subject", "signer", "reason", "issued_at", "expires_at")


class StatementRefused(ValueError):
    """A signed statement that cannot be accepted (the message says why)."""


@dataclass(frozen=True)
class Person:
    name: str
    key: Ed25519PublicKey
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Approvers:
    """The people who may sign statements, their keys and what their roles allow."""

    people: dict[str, Person]
    roles: dict[str, list[str]]
    source: str = ""

    @classmethod
    def from_json(cls, text: str, source: str = "") -> "Approvers":
        data = json.loads(text)
        people = {}
        for name, entry in data.get("people", {}).items():
            if name == RESERVED_NAME:
                raise StatementRefused(f"{source}: {RESERVED_NAME!r} is the registry's own actor, not a person")
            key = load_ssh_public_key(entry["key"].encode())
            if not isinstance(key, Ed25519PublicKey):
                raise StatementRefused(f"{source}: {name}'s key is not an ssh-ed25519 key")
            people[name] = Person(name, key, tuple(entry.get("roles", ())))
        return cls(people, {**DEFAULT_ROLES, **data.get("roles", {})}, source)

    @classmethod
    def from_env(cls) -> "Approvers":
        """The approvers file ``$HYBRID_APPROVERS_FILE`` names; refuses when it is unset or unreadable
        (no file, no approvals: nothing is allowed by default)."""
        path = os.environ.get(APPROVERS_ENV, "").strip()
        if not path:
            raise StatementRefused(f"no approvers are configured: set {APPROVERS_ENV} to the approvers file "
                                   "(see docs/configuration.md)")
        try:
            return cls.from_json(Path(path).read_text(), source=path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StatementRefused(f"the approvers file {path} cannot be read: {error}") from error

    def allows(self, name: str, permission: str) -> bool:
        person = self.people.get(name)
        return person is not None and any(permission in self.roles.get(role, ()) for role in person.roles)


def permission_of(statement: dict[str, Any]) -> str:
    """What a statement needs a role to allow: ``approve:promote``, ``approve:hardware_evaluation``,
    ``promote``, ``rollback``, ``launch:hardware_evaluation``."""
    action, subject = statement["action"], statement["subject"]
    if action == "approve":
        return f"approve:{subject.split(':', 1)[0]}"
    return f"launch:{subject}" if action == "launch" else action


def canonical(statement: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the domain tag and the statement's canonical JSON."""
    return DOMAIN + json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def statement_id(signed: dict[str, Any]) -> str:
    """A signed statement's identity (the first 16 hex digits of the SHA-256 of its signed bytes)."""
    return hashlib.sha256(canonical(signed["statement"])).hexdigest()[:16]


def timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d`` as a timedelta.

    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    found = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text)
    if not found:
        raise StatementRefused(f"cannot read the duration {text!r}: use minutes, hours or days, like 90m, 24h, 7d")
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[found[2]]: int(found[1])})


def sign_statement(statement: dict[str, Any], private_key: Path, password: bytes | None = None) -> dict[str, Any]:
    """``statement`` signed with the OpenSSH Ed25519 private key in ``private_key`` (TypeError when
    the key is passphrase-protected and no ``password`` is given)."""
    try:
        key = load_ssh_private_key(Path(private_key).expanduser().read_bytes(), password=password)
    except UnsupportedAlgorithm as error:  # bcrypt (a dependency) missing from this installation
        raise StatementRefused(f"{private_key} is passphrase-protected, and opening such a key needs the bcrypt "
                               "package: reinstall with `make install`") from error
    except ValueError as error:
        raise StatementRefused(f"cannot open {private_key}: a wrong passphrase, or not an OpenSSH private key "
                               "(make one with `ssh-keygen -t ed25519`)") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise StatementRefused(f"{private_key} is not an Ed25519 key: make one with `ssh-keygen -t ed25519`")
    return {"statement": statement, "signature": base64.b64encode(key.sign(canonical(statement))).decode()}


def read_signed(text: str) -> dict[str, Any]:
    """A signed statement from its JSON text; refuses anything else (free text, a bare statement)."""
    try:
        signed = json.loads(text)
    except (TypeError, ValueError):
        signed = None
    if not (isinstance(signed, dict) and isinstance(signed.get("statement"), dict)
            and isinstance(signed.get("signature"), str)):
        raise StatementRefused("this is not a signed statement (JSON with 'statement' and 'signature'); "
                               "free text is not accepted")
    missing = [name for name in _FIELDS if not isinstance(signed["statement"].get(name), str)]
    if missing:
        raise StatementRefused(f"the statement lacks {', '.join(missing)}")
    return signed


def verify_signed(signed: dict[str, Any], approvers: Approvers, *, now: datetime | None = None) -> dict[str, Any]:
    """The statement of ``signed`` once its signer is listed, the signature is theirs, a role of
    theirs allows it and it is within its lifetime (issued, not expired, at most MAX_LIFETIME)."""
    statement = signed["statement"]
    signer = statement["signer"]
    person = approvers.people.get(signer)
    if person is None:
        raise StatementRefused(f"{signer!r} is not listed in the approvers file {approvers.source}".rstrip())
    try:
        person.key.verify(base64.b64decode(signed["signature"], validate=True), canonical(statement))
    except (InvalidSignature, ValueError) as error:
        raise StatementRefused(f"the signature is not {signer}'s (forged, altered after signing, or made with "
                               "another key)") from error
    if not approvers.allows(signer, permission_of(statement)):
        raise StatementRefused(f"{signer}'s roles ({', '.join(person.roles) or 'none'}) do not allow "
                               f"{permission_of(statement)}")
    now = now or datetime.now(timezone.utc)
    try:
        issued, expires = (datetime.strptime(statement[name], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                           for name in ("issued_at", "expires_at"))
    except ValueError as error:
        raise StatementRefused(f"unreadable issued_at or expires_at: {error}") from error
    if expires <= now:
        raise StatementRefused(f"the statement expired at {statement['expires_at']}")
    if issued > now + CLOCK_SKEW or expires - issued > MAX_LIFETIME:
        raise StatementRefused(f"the statement's lifetime ({statement['issued_at']} to {statement['expires_at']}) "
                               f"is not within now and {MAX_LIFETIME.days} days")
    return statement
