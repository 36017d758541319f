"""``hybrid-plan``: what each kernel route (pairwise, projected, Nystrom) would submit for the current
data or a stated size, on the configured device, before anything runs. It submits nothing.

For the latest ``reduced_embeddings`` and ``circuit_artifact`` (or ``--train-rows``), on the
configured device (``HYBRID_QUANTUM_DEVICE``, ``HYBRID_QUANTUM_SHOTS``, or ``--device``/``--shots``),
it prints the circuits, billed tasks, dollars and estimated wall time of each route, which of them
the time budget (``HYBRID_TIME_BUDGET_S``) refuses, and each route's expected holdout accuracy on
the exact simulator (``--no-accuracy`` to skip).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from hybrid_assets.planning.routes import current_data, plan_current_data, route_report
from hybrid_assets.resources import resources_from_env
from hybrid_resources.cost_policy import SubmissionRefused
from hybrid_resources.data.artifacts import ArtifactStore
from hybrid_resources.data.paths import DataLayout
from hybrid_resources.quantum.feature_maps import FeatureMapSpec
from hybrid_resources.quantum.nystrom import NystromConfig
from hybrid_resources.quantum.planning import PlanRequest, format_plan

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (default ``sys.argv``), plan every route and print the plan (Markdown or JSON).
    A device that cannot be planned (e.g. a managed device without an ARN, or one without a price)
    exits with ``SystemExit("hybrid-plan: <what to set>")`` instead of a traceback."""
    parser = argparse.ArgumentParser(prog="hybrid-plan", description=__doc__.split("\n\n")[0].replace("``", "`"))
    parser.add_argument("--device", help="PennyLane device name (default: HYBRID_QUANTUM_DEVICE)")
    parser.add_argument("--shots", type=int, help="shots per circuit (default: HYBRID_QUANTUM_SHOTS)")
    parser.add_argument("--train-rows", type=int, help="plan for this many train rows instead of the current data")
    parser.add_argument("--test-rows", type=int, default=0, help="test rows with --train-rows")
    parser.add_argument("--qubits", type=int, default=8, help="feature-map width with --train-rows (IQP, reps 2)")
    parser.add_argument("--landmarks", type=int, default=NystromConfig().m, help="Nyström landmarks m")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--no-accuracy", action="store_true",
                        help="skip the expected accuracy of each route (exact simulator, current data only)")
    args = parser.parse_args(argv)
    resources = resources_from_env()
    cost_policy = resources["cost_policy"]
    backend = resources["quantum_backend"].process_config_and_initialize().backend_config()
    if args.device:
        backend = replace(backend, device_name=args.device, shot_emulation=False)
    if args.shots is not None:
        backend = replace(backend, shots=args.shots or None)
    try:
        if args.train_rows:
            request = PlanRequest(args.train_rows, args.test_rows, FeatureMapSpec("iqp", args.qubits, reps=2),
                                  args.landmarks)
            plans, report = route_report(request, backend, cost_policy, {})
        else:
            embeddings, tuning = current_data(ArtifactStore.at(DataLayout.from_env().artifacts))
            plans, report = plan_current_data(embeddings, tuning, backend, cost_policy, landmarks=args.landmarks,
                                              with_accuracy=not args.no_accuracy)
    except SubmissionRefused as refusal:
        raise SystemExit(f"hybrid-plan: {refusal.description}") from None
    if args.format == "json":
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"Kernel routes for {report['train_rows']} train + {report['test_rows']} test rows, {report['qubits']} "
          f"qubits, on {report['device']} ({report['shots'] or 'exact'} shots); nothing was submitted.\n")
    print(format_plan(plans))
    if report["expected_accuracy"]:
        print(f"\nExpected holdout {report.get('expected_metric', 'accuracy')} on the exact simulator: "
              + ", ".join(f"{route} {value:.4f}" for route, value in report["expected_accuracy"].items()))
    for route, message in report["refused"].items():
        print(f"\nrefused: {route}: {message}")


if __name__ == "__main__":
    main()
