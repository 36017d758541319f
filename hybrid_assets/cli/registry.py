"""``hybrid-registry``: list and show model versions; sign, approve, promote and roll back the champion.

Every action a person takes is a statement signed with their Ed25519 key, listed with their roles
in the approvers file (``$HYBRID_APPROVERS_FILE``); every change is recorded in the warehouse with
who did it and why::

    hybrid-registry sign approve promote:VERSION --key ~/.ssh/id_ed25519 --as alice --reason WHY --out approval.json
    hybrid-registry approve --statement approval.json                 # recorded once verified
    hybrid-registry sign promote VERSION --key ~/.ssh/id_ed25519 --as bob --reason WHY --out promote.json
    hybrid-registry promote --statement promote.json                  # needs someone else's approval
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from hybrid_assets.serving.registry import (
    headline_metric,
    RegistryError,
    approve,
    describe,
    draft_statement,
    find,
    promote,
    registry_store,
    rollback,
)
from hybrid_resources.approvals import Approvers, StatementRefused, sign_statement
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.warehouse import Warehouse

__all__ = ["main"]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid-registry", description=__doc__.split("\n\n")[0].replace("``", "`"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every registered version and its status")
    show = commands.add_parser("show", help="one version: artifacts, metrics, gates, events, approvals")
    show.add_argument("version")
    sign = commands.add_parser("sign", help="sign a statement with your Ed25519 key (written to --out or stdout)")
    sign.add_argument("action", choices=("approve", "promote", "rollback", "launch"))
    sign.add_argument("target", nargs="?", default="", help="approve: promote:<version> or hardware_evaluation; "
                      "promote: a version; rollback: a version (default the previous champion); launch: "
                      "hardware_evaluation")
    sign.add_argument("--key", required=True, help="your OpenSSH Ed25519 private key (read here, never stored)")
    sign.add_argument("--as", dest="signer", required=True, help="your name in the approvers file")
    sign.add_argument("--reason", required=True, help="why")
    sign.add_argument("--expires-in", default="", help="lifetime: 90m, 24h, 7d (default 24h for an approval, "
                                                       "1h for a request; at most 7d)")
    sign.add_argument("--out", default="", help="file to write the signed statement to (default stdout)")
    for name, helptext in (("approve", "record a signed approval of promote:<version> or hardware_evaluation"),
                           ("promote", "make a version the champion (your signed request + another's approval)"),
                           ("rollback", "re-point the champion to an earlier approved champion (signed request)")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--statement", required=True, help="the signed statement's file ('-': stdin)")
    return parser


def signed_statement(args: argparse.Namespace, warehouse: Warehouse, store: ArtifactStore) -> str:
    """The signed statement ``sign`` makes, as JSON text."""
    statement = draft_statement(warehouse, store, args.action, args.target, signer=args.signer, reason=args.reason,
                                expires_in=args.expires_in)
    try:
        signed = sign_statement(statement, Path(args.key))
    except TypeError:  # a passphrase-protected key: ask for it (never echoed, never stored)
        signed = sign_statement(statement, Path(args.key), getpass.getpass(f"passphrase for {args.key}: ").encode())
    return json.dumps(signed, indent=2, sort_keys=True)


def run(args: argparse.Namespace, warehouse: Warehouse, store: ArtifactStore) -> str:
    """Do one command; returns what it prints."""
    if args.command == "list":
        return "\n".join(f"{entry['version_id']:<34} {entry['status']:<10} {entry['kind']:<20} "
                         "{} {:.4f}  ".format(*headline_metric(entry["metrics"])) + f"{entry['registered_at']}"
                         for entry in describe(warehouse)["models"])
    if args.command == "show":
        everything = describe(warehouse)
        with warehouse.session(read_only=True) as session:
            entry = find(session, args.version)
        events = [e for e in everything["events"] if e["version_id"] == args.version]
        approvals = [a for a in everything["approvals"] if a["subject"] == f"promote:{args.version}"]
        return json.dumps({**entry, "events": events, "approvals": approvals}, indent=2, default=str)
    if args.command == "sign":
        text = signed_statement(args, warehouse, store)
        if not args.out:
            return text
        Path(args.out).write_text(text + "\n")
        return f"signed {args.action} {args.target} as {args.signer}: {args.out}"
    statement = sys.stdin.read() if args.statement == "-" else Path(args.statement).read_text()
    approvers = Approvers.from_env()
    if args.command == "approve":
        return f"approval {approve(warehouse, statement, approvers, store)} recorded"
    if args.command == "promote":
        approval = promote(warehouse, statement, approvers, store)
        return (f"{approval['subject'].split(':', 1)[1]} is the champion (approval {approval['approval_id']} by "
                f"{approval['actor']})")
    return f"{rollback(warehouse, statement, approvers)} is the champion again"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(run(args, Warehouse(), registry_store()))
    except (RegistryError, StatementRefused, OSError, ValueError) as error:
        print(f"hybrid-registry: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
