"""The shot planner before and after issue 26: seconds, the recommendation, each rung's metric and kernel error.

Not a test. For each dataset a child process lands it, materializes what ``shot_plan`` reads
(``reduced_embeddings``, ``kernel_tuning``, ``circuit_artifact``) with the embedded defaults as
``make demo`` does, and saves them; then, on the same ladder sample and exact kernels:

- before: the ladder as it was at commit ``BEFORE`` (its ``shot_planner.py`` read from git): every
  entry of both kernels drawn on every rung x ``seeds`` repeats, the kernel error measured;
- after: the ladder as ``shot_plan`` runs it now (its ``ShotPlanConfig`` defaults): the kernel
  error in closed form, repeats (the same draws, seed by seed) that stop once a rung's side of
  ``exact - tolerance`` is clear, and only the rungs the recommendation needs
  emulated (``climb``: the top rung, then from the fewest shots up to the first within).

Datasets: ``bench`` (``refresh_profile.py``'s make_classification, 30 features, 8 informative),
``separable`` (make_classification with 6 informative features, class_sep 1.5, no label noise:
a rung is recommended), ``demo`` (the bundled breast-cancer data, 569 rows). Prints the figures
and writes ``bench/results/shot_plan_bench.json``.

    .venv/bin/python bench/shot_plan_bench.py [--rows 10000] [--data bench,separable,demo]
                                              [--tolerances 0.01,0.005]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BEFORE = "816169a"  # the last commit before the closed-form ladder
ARRAYS = ("X_train", "y_train", "X_test", "y_test", "task")


def land(dataset: str, path: Path, rows: int) -> None:
    """Write ``dataset`` (bench, separable or demo) as a landing CSV at ``path``."""
    if dataset == "demo":
        from hybrid_assets.common.examples import write_example_dataset

        write_example_dataset(path)
        return
    if dataset == "bench":
        from refresh_profile import landing_file

        landing_file(path, rows)
        return
    import polars as pl
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=30, n_informative=6, n_redundant=24, class_sep=1.5,
                               flip_y=0.0, random_state=3)
    frame = pl.DataFrame(X, schema=[f"f{i}" for i in range(30)], orient="row")
    frame.with_columns(pl.Series("label", [str(v) for v in y]),
                       pl.Series("sample_id", [f"s{i:07d}" for i in range(rows)])).write_csv(path)


def inputs_child(dataset: str, rows: int, out: Path) -> None:
    """Land ``dataset``, materialize the shot plan's upstream assets, save them under ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["HYBRID_DATA_DIR"] = str(Path(folder) / "data")
        from dagster import AssetSelection, instance_for_test, materialize

        from hybrid_assets.common.partitions import (
            landing_files_partitions,
            safe_partition_key,
        )
        from hybrid_assets.definitions import all_assets
        from hybrid_assets.ingest.assets import raw_samples
        from hybrid_assets.resources import resources_from_env
        from hybrid_resources.data.artifacts import ArtifactStore
        from hybrid_resources.data.paths import DataLayout

        layout = DataLayout.from_env().ensure()
        land(dataset, layout.landing / "bench.csv", rows)
        resources = resources_from_env()
        with instance_for_test() as instance:
            key = safe_partition_key("bench.csv")
            instance.add_dynamic_partitions(landing_files_partitions.name, [key])
            assert materialize([raw_samples], partition_key=key, instance=instance, resources=resources).success
            upstream = AssetSelection.assets("circuit_artifact").upstream() - AssetSelection.assets("raw_samples")
            assert materialize(all_assets, selection=upstream, instance=instance, resources=resources).success
            store = ArtifactStore(layout.artifacts)
            embeddings = store.read(["reduced_embeddings"])
            np.savez(out / "embeddings.npz", **{name: embeddings[name] for name in ARRAYS})
            (out / "tuning.json").write_text(json.dumps(store.read(["kernel_tuning"])))
            (out / "circuit.json").write_text(json.dumps(store.read(["circuit_artifact"])))


def before_module() -> types.ModuleType:
    """``shot_planner.py`` as it was at ``BEFORE``, imported under another name."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE}:hybrid_assets/training/shot_planner.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("shot_planner_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "shot_planner_before.py", "exec"), module.__dict__)
    return module


def load_inputs(folder: Path) -> tuple[dict, dict, dict]:
    """The embeddings, kernel tuning and circuit artifact :func:`inputs_child` saved."""
    embeddings = dict(np.load(folder / "embeddings.npz"))
    return (embeddings, json.loads((folder / "tuning.json").read_text()),
            json.loads((folder / "circuit.json").read_text()))


def ladder_inputs(folder: Path) -> dict:
    """What ``shot_plan`` builds before its ladder: the sample, the exact kernels, C, the metric."""
    from hybrid_assets.training.quantum import (
        ShotPlanConfig,
        ladder_split,
        projected_emulator,
    )
    from hybrid_assets.training.scale import kernel_plan
    from hybrid_assets.training.shot_planner import holdout_score
    from hybrid_assets.training.tasks import judged_metric, task_of
    from hybrid_resources.gate_policy import GatePolicy
    from hybrid_resources.quantum.kernels import compute_kernel, kernel_spec

    embeddings, tuning, circuit = load_inputs(folder)
    policy, config = GatePolicy(), ShotPlanConfig()
    spec, C = kernel_spec(circuit["spec"]), float(tuning["C"])
    split, samples = ladder_split(embeddings, kernel_plan(len(embeddings["y_train"]), policy), config.max_train_rows)
    started = time.perf_counter()
    train = compute_kernel(split["X_train"], spec=spec).matrix
    test = compute_kernel(split["X_test"], split["X_train"], spec=spec).matrix
    kernels_s = time.perf_counter() - started
    metric = judged_metric(task_of(embeddings), policy.metric)
    labels = (split["y_train"], split["y_test"])
    return {"train": train, "test": test, "labels": labels, "C": C, "metric": metric, "config": config,
            "seed": policy.cv_seed, "emulate": projected_emulator(spec, split, policy.cv_seed),
            "exact": holdout_score(train, test, *labels, C=C, metric=metric), "kernels_s": kernels_s,
            "tuned": {**tuning["spec"], "C": C}, "rows": {"train": len(labels[0]), "test": len(labels[1])}}


def run_ladder(module: types.ModuleType, data: dict, tolerance: float | None) -> tuple[float, list, list]:
    """One ladder with ``module``'s ``shot_ladder`` (with the stop rule at ``tolerance`` where the
    module has one): its seconds, its rungs and those rungs priced (no device: no price)."""
    from hybrid_resources.cost_policy import CostPolicy

    config, labels = data["config"], data["labels"]
    kwargs = {"C": data["C"], "metric": data["metric"], "ladder": config.ladder, "seeds": config.seeds,
              "seed": data["seed"], "emulate": data["emulate"]}
    if tolerance is not None:
        kwargs["stop"] = module.SeedStop(data["exact"] - tolerance, min(config.min_seeds, config.seeds),
                                         1.0 / len(labels[1]))
        kwargs["climb"] = config.climb and data["emulate"] is None  # no device price: costs do not fall
    started = time.perf_counter()
    ladder = module.shot_ladder(data["train"], data["test"], *labels, **kwargs)
    seconds = time.perf_counter() - started
    return seconds, ladder, module.priced_rungs(ladder, {}, 0, CostPolicy())


def summary(module: types.ModuleType, run: tuple[float, list, list], exact: float, tolerance: float) -> dict:
    """A ladder's seconds, recommendation (``module``'s rule) and rungs, for the JSON and the table."""
    seconds, ladder, rungs = run
    best = module.recommend(rungs, exact, tolerance=tolerance, device="configured")
    return {"seconds": round(seconds, 2), "recommended_shots": best.shots if best else "none within tolerance",
            "rungs": [{"shots": rung.shots, "metric_mean": None if not scores else round(rung.metric_mean, 4),
                       "metric_std": None if not scores else round(rung.metric_std, 4), "seeds": len(scores),
                       "kernel_mean_abs_error": round(rung.kernel_mean_abs_error, 6),
                       "kernel_max_abs_error": round(rung.kernel_max_abs_error, 6)}
                      for rung, (_, scores, _) in zip(rungs, ladder)]}


def compare(dataset: str, folder: Path, tolerances: list[float]) -> dict:
    """Before and after on one dataset's saved inputs, at each tolerance (before runs once: its
    rungs do not depend on the tolerance)."""
    from hybrid_assets.training import shot_planner

    data = ladder_inputs(folder)
    old = before_module()
    before = run_ladder(old, data, None)
    result = {"dataset": dataset, "exact": round(data["exact"], 4), "metric": data["metric"], "rows": data["rows"],
              "tuned": data["tuned"], "kernels_s": round(data["kernels_s"], 2), "by_tolerance": {}}
    for tolerance in tolerances:
        after = summary(shot_planner, run_ladder(shot_planner, data, tolerance), data["exact"], tolerance)
        was = summary(old, before, data["exact"], tolerance)
        result["by_tolerance"][str(tolerance)] = {"before": was, "after": after,
                                                  "speedup": round(was["seconds"] / after["seconds"], 2)}
    return result


def table(result: dict) -> list[str]:
    """One dataset's comparison as text lines."""
    lines = [f"{result['dataset']}: {result['rows']['train']} x {result['rows']['train']} train kernel, "
             f"{result['rows']['test']} test rows, tuned {result['tuned']}, exact {result['metric']} {result['exact']}"]
    for tolerance, run in result["by_tolerance"].items():
        before, after = run["before"], run["after"]
        lines.append(f"  tolerance {tolerance}: before {before['seconds']:.1f} s -> after {after['seconds']:.1f} s "
                     f"({run['speedup']:.1f}x); recommended {before['recommended_shots']} -> "
                     f"{after['recommended_shots']}")
        lines.append(f"    {'shots':>6} {'before mean±std (seeds)':>26} {'after mean±std (seeds)':>26} "
                     f"{'error measured':>15} {'error expected':>15} {'worst entry':>12}")
        for b, a in zip(before["rungs"], after["rungs"]):
            emulated = f"{a['metric_mean']:>12.4f}±{a['metric_std']:.4f} ({a['seeds']})" if a["seeds"] else \
                f"{'not emulated':>22}"
            lines.append(f"    {b['shots']:>6} {b['metric_mean']:>12.4f}±{b['metric_std']:.4f} ({b['seeds']})"
                         f" {emulated:>26}"
                         f" {b['kernel_mean_abs_error']:>15.6f} {a['kernel_mean_abs_error']:>15.6f}"
                         f" {a['kernel_max_abs_error']:>12.6f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--data", default="bench,separable,demo", type=lambda text: text.split(","))
    parser.add_argument("--tolerances", default="0.01,0.005", type=lambda text: [float(v) for v in text.split(",")])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        inputs_child(args.child, args.rows, args.child_out)
        return
    results = []
    for dataset in args.data:
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([sys.executable, __file__, "--child", dataset, "--rows", str(args.rows),
                            "--child-out", folder], check=True, capture_output=True)
            results.append(compare(dataset, Path(folder), args.tolerances))
        print("\n".join(table(results[-1])), flush=True)
    target = ROOT / "bench" / "results" / "shot_plan_bench.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"before": BEFORE, "rows": args.rows, "cpus": os.cpu_count(),
                                  "load_average": os.getloadavg(), "results": results}, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
