"""``hybrid-registry``: list and show model versions; approve, promote and roll back the champion.

Every change is recorded in the warehouse with who did it and why.
"""

from __future__ import annotations

import argparse
import json
import sys

from hybrid_assets.serving.registry import (
    RegistryError,
    approve,
    describe,
    find,
    promote,
    rollback,
)
from hybrid_resources.data.warehouse import Warehouse

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid-registry", description=__doc__.split("\n\n")[0].replace("``", "`"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every registered version and its status")
    show = commands.add_parser("show", help="one version: artifacts, metrics, gates, events, approvals")
    show.add_argument("version")
    for name, helptext in (("promote", "make a version the champion (needs an approval)"),
                           ("rollback", "re-point the champion to the previous (or the named) version"),
                           ("approve", "record an approval: promote:<version> or hardware_evaluation")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("target", nargs="?" if name == "rollback" else None)
        command.add_argument("--by", required=True, help="who")
        command.add_argument("--reason", required=True, help="why")
    args = parser.parse_args(argv)
    warehouse = Warehouse()
    try:
        if args.command == "list":
            for entry in describe(warehouse)["models"]:
                print(f"{entry['version_id']:<34} {entry['status']:<10} {entry['kind']:<20} "
                      f"accuracy {entry['metrics'].get('accuracy', float('nan')):.4f}  {entry['registered_at']}")
        elif args.command == "show":
            everything = describe(warehouse)
            with warehouse.session(read_only=True) as session:
                entry = find(session, args.version)
            events = [e for e in everything["events"] if e["version_id"] == args.version]
            approvals = [a for a in everything["approvals"] if a["subject"] == f"promote:{args.version}"]
            print(json.dumps({**entry, "events": events, "approvals": approvals}, indent=2, default=str))
        elif args.command == "promote":
            approval = promote(warehouse, args.target, actor=args.by, reason=args.reason)
            print(f"{args.target} is the champion (approval {approval['approval_id']} by {approval['actor']})")
        elif args.command == "rollback":
            print(f"{rollback(warehouse, actor=args.by, reason=args.reason, to=args.target)} is the champion again")
        else:
            print(f"approval {approve(warehouse, args.target, actor=args.by, reason=args.reason)} recorded for "
                  f"{args.target}")
    except RegistryError as error:
        print(f"hybrid-registry: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
