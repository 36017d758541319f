"""Features -> reduced embeddings -> circuit artifact -> quantum kernels -> quantum SVM."""

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from hybrid_assets.common.automation import ON_NEW_DATA
from hybrid_assets.common.circuits import Ceilings, ceilings_gate, circuit_report
from hybrid_assets.common.gates import GateResult, kernel_health
from hybrid_assets.common.outputs import (
    artifact_output,
    latest_metadata,
    recorded_artifact,
)
from hybrid_assets.common.reporting import (
    comparison_table,
    markdown_image,
    shot_plan_png,
)
from hybrid_assets.training.embeddings import (
    ENCODING_RANGE,
    EmbeddingTransform,
    reduce_embeddings,
    refit_reason,
)
from hybrid_assets.training.models import (
    fit_precomputed_svm,
    model_holdout,
    precomputed_decision,
)
from hybrid_assets.training.scale import (
    KernelPlan,
    is_nystrom,
    kernel_plan,
    landmark_indices,
    sample_note,
    stratified_sample,
)
from hybrid_assets.training.shot_planner import (
    SHOT_LADDER,
    SeedStop,
    ShotPlan,
    costs_rise_with_shots,
    emulation_note,
    holdout_score,
    priced_rungs,
    recommend,
    rung_usd,
    shot_ladder,
)
from hybrid_assets.training.tasks import holdout_metric, judged_metric, task_of
from hybrid_assets.training.tuning import cross_validate_Cs, kfold_splits, tune_quantum
from hybrid_resources.compute import DaskCluster
from hybrid_resources.cost_policy import CostPolicy
from hybrid_resources.data.artifacts import (
    content_hash,
    info_of,
    telemetry_of,
    with_info,
)
from hybrid_resources.data.big_arrays import (
    block_rows_of,
    iter_row_blocks,
    scratch_array,
)
from hybrid_resources.data.dataset import load_dataset_contract, resolve_task
from hybrid_resources.data.paths import DataLayout, remove_tree
from hybrid_resources.data.warehouse import Warehouse
from hybrid_resources.gate_policy import GatePolicy
from hybrid_resources.quantum.backends import (
    BackendConfig,
    BackendUnavailableError,
    QuantumBackend,
)
from hybrid_resources.quantum.devices import UnknownDeviceError, known_devices
from hybrid_resources.quantum.feature_maps import (
    FEATURE_MAPS,
    FeatureMapSpec,
    circuit_resources,
    to_openqasm,
)
from hybrid_resources.quantum.kernel_cache import KernelCache
from hybrid_resources.quantum.kernels import (
    FAMILIES,
    KernelSpec,
    circuit_version,
    compute_kernel,
    kernel_spec,
    run_circuits,
    streamed_kernel,
)
from hybrid_resources.quantum.nystrom import (
    NystromModel,
    TargetCoding,
    landmark_columns,
    non_landmark_rows,
    nystrom_model,
)
from hybrid_resources.quantum.projected_kernel import (
    DEFAULT_GAMMAS,
    ProjectedKernelSpec,
    kernel_version,
    projected_train_test,
    tune_gamma,
)
from hybrid_resources.quantum.transpilation import transpile_on_devices

# The circuit artifact's code version is the registry's feature-map and kernel-family versions: bumping a
# semantic version marks the circuit and everything downstream stale.
FEATURE_MAP_VERSIONS = ",".join([*(f"{name}@{fm.version}" for name, fm in sorted(FEATURE_MAPS.items())),
                                 kernel_version()])


class EmbeddingConfig(Config):
    n_qubits: int = Field(default=6, ge=1, le=20, description="Reduced dimensions = qubits of the feature map")
    refit_growth: float = Field(
        default=0.2, ge=0.0,
        description="Keep the fitted PCA until the train split has grown by more than this fraction since "
                    "the fit, so old samples keep their embeddings and cached kernel entries; 0 re-fits on any growth")


@asset(automation_condition=ON_NEW_DATA, deps=["features"], code_version="2", group_name="quantum", kinds={"numpy"})
def reduced_embeddings(context: AssetExecutionContext, config: EmbeddingConfig, warehouse: Warehouse) -> Output:
    """Missing values imputed and categories encoded, then PCA of the features to n_qubits dims,
    scaled into the encoding range; all fitted on train only. The task (binary, multiclass,
    regression) is declared by the dataset contract file or inferred; the metadata says which.

    The fitted transform is kept across materializations while the train split grows by at
    most ``refit_growth`` (see :func:`refit_reason`); the metadata says which happened.
    """
    # Arrival order: as data grows, new samples come after the old ones, so the kernel cache
    # serves the old block in one copy.
    with warehouse.session(read_only=True) as session:
        table = session.features_in_arrival_order()
        columns = session.established_columns() or ([], [])
    contract = load_dataset_contract()
    recorded = latest_metadata(context.instance, "reduced_embeddings")
    previous_bundle = recorded_artifact("reduced_embeddings", recorded)
    previous = EmbeddingTransform.from_bundle(previous_bundle) if isinstance(previous_bundle, dict) else None
    reason = refit_reason(previous, table, n_qubits=config.n_qubits, refit_growth=config.refit_growth)
    bundle = reduce_embeddings(table, n_qubits=config.n_qubits, transform=None if reason else previous,
                               contract=contract, columns=columns)
    n_fit = len(bundle["fit_ids"])
    # The run that fit the transform in use: a kept transform's lineage is not an edge of the graph.
    fit_run = context.run_id if reason else recorded.get("transform_fit_run", "unknown")
    return artifact_output(bundle, {
        "train_shape": list(bundle["X_train"].shape),
        "test_shape": list(bundle["X_test"].shape),
        "n_qubits": int(bundle["X_train"].shape[1]),
        "task": str(bundle["task"][0]),
        "task_resolution": resolve_task(contract, table["label"].unique().to_list()).how,
        "classes": MetadataValue.json(bundle["classes"].tolist()),
        "encoding_range": list(ENCODING_RANGE),
        "categorical_columns": MetadataValue.json(columns[1]),
        "encoded_width": int(bundle["mean"].shape[0]),
        "transform": f"fit on {n_fit} train rows: {reason}" if reason else
                     f"kept (fit on {n_fit} train rows, the train split now has {len(bundle['ids_train'])})",
        "transform_fit_rows": n_fit,
        "transform_fit_run": fit_run,
    })


class KernelTuningConfig(Config):
    feature_map: str = Field(default="iqp", description=f"One of: {', '.join(sorted(FEATURE_MAPS))}")
    entanglement: str = Field(default="linear", description="linear | circular | full (IQP map)")
    bandwidths: list[float] = Field(default=[0.1, 0.3, 1.0], description="Input scale factors to try")
    reps: list[int] = Field(default=[1, 2], description="Repetitions of the feature-map layer to try")
    Cs: list[float] = Field(default=[0.1, 1.0, 10.0, 100.0], description="SVM regularizations to try")
    kernel: str = Field(default="fidelity",
                        description="Kernel family: fidelity (a circuit per pair), projected (Huang et al. 2021: 3 "
                                    "circuits per sample), or best (both tuned on the same folds, the better CV wins)")
    gammas: list[float] = Field(default=list(DEFAULT_GAMMAS), description="Projected kernel widths to try")
    retune_growth: float = Field(
        default=0.2, ge=0.0,
        description="Keep the tuned choice until the train split has grown by more than this fraction since the "
                    "tuning, so a refresh keeps the circuit and its cached kernel entries; 0 re-tunes on any growth")


# What the noise spread and the route plan read beyond the embeddings: a refresh runs these two
# first among its ready steps (Dagster's step priority), so what waits for them (`make demo`'s
# second process) starts while the classical baseline fits; the steps' results do not change.
BEFORE_THE_BASELINE = {"dagster/priority": "1"}


@asset(automation_condition=ON_NEW_DATA, code_version=FEATURE_MAP_VERSIONS, group_name="quantum",
       kinds={"sklearn", "numpy"}, op_tags=BEFORE_THE_BASELINE)
def kernel_tuning(context: AssetExecutionContext, config: KernelTuningConfig, reduced_embeddings: dict,
                  gate_policy: GatePolicy) -> Output:
    """The quantum kernel SVM tuned like the classical baseline: k-fold CV on the train split over
    bandwidth x reps x C (a one-value list pins a value), on the exact simulator whatever the
    device, so only the chosen configuration is ever sent to one. Candidates over the circuit
    ceilings (logically, and after transpilation to the gate policy's target devices) are not tried. Holds the chosen ``spec``, ``C`` and every candidate's CV score,
    ranked by the task's judged metric (``cv_metric``: the policy's metric, R² for regression;
    one-vs-rest SVMs for a multi-class task, an SVR for regression).

    The choice is kept while the train split grows by at most ``retune_growth`` under the same
    grids and protocol (see :func:`retune_reason`): a new circuit would recompute every kernel
    entry, on a paid device too."""
    X, y = reduced_embeddings["X_train"], reduced_embeddings["y_train"]
    task = task_of(reduced_embeddings)
    metric = judged_metric(task, gate_policy.metric)
    grid = {"feature_map": config.feature_map, "entanglement": config.entanglement, "bandwidths": config.bandwidths,
            "reps": config.reps, "Cs": config.Cs, "n_qubits": int(X.shape[1]), "metric": metric,
            "folds": gate_policy.cv_folds, "seed": gate_policy.cv_seed}
    if task != "binary":  # absent for binary, so a tuning recorded before tasks existed keeps its choice
        grid["task"] = task
    if config.kernel not in (*FAMILIES, "best"):
        raise Failure(f"kernel_tuning: kernel {config.kernel!r} is not one of {', '.join(FAMILIES)}, best")
    if config.kernel != "fidelity":
        # Absent for the fidelity kernel, so a tuning recorded before the option keeps its choice.
        grid |= {"kernel": config.kernel, "gammas": config.gammas}
    target_devices = ceilings_of(gate_policy).target_devices
    if target_devices:  # the candidates' ceilings hold on these devices too; absent when none, as before
        grid["target_devices"] = list(target_devices)
    # Above max_exact_train (the Nyström path) the CV runs on a seeded stratified sample: its
    # kernel is square in the rows it tunes on.
    plan = kernel_plan(len(y), gate_policy)
    sample = plan.exact_sample(y)
    if plan.nystrom:
        grid["sample_rows"] = plan.max_exact_train
    previous = recorded_artifact("kernel_tuning", latest_metadata(context.instance, "kernel_tuning"))
    reason = retune_reason(previous, grid, len(y), config.retune_growth)
    # The same choice keeps the same content, hence the same data version: nothing downstream changes.
    if reason is None:
        tuning = previous
    else:
        tuning = tune_kernel(X[sample], y[sample], grid, gate_policy)
        if plan.nystrom:
            tuning |= {"n_train": int(len(y)),
                       "sample": sample_note(len(y), sample, seed=plan.seed, what="kernel_tuning CV rows")}
    decision = (f"kept (tuned on {previous['n_train']} train rows, the split now has {len(y)})" if reason is None
                else f"tuned on {len(sample)} of {len(y)} train rows: {reason}")
    rows = {f"{c.get('kernel', 'fidelity')} {c['params']}": {"cv_mean": c["cv_mean"], "cv_std": c["cv_std"]}
            for c in tuning["candidates"]}
    return artifact_output(tuning, {
        "kernel": tuning.get("kernel", {}).get("family", "fidelity"),
        **({"gamma": tuning["kernel"]["gamma"]} if "gamma" in tuning.get("kernel", {}) else {}),
        "bandwidth": tuning["spec"]["bandwidth"], "reps": tuning["spec"]["reps"], "C": tuning["C"],
        "task": task, "cv_metric": metric, f"cv_{metric}": tuning["cv_mean"], "tuning": decision,
        "kernel_path": plan.path, "kernel_path_reason": plan.reason,
        "cv_sample": MetadataValue.json(tuning.get("sample") or sample_note(len(y), sample, seed=plan.seed,
                                                                            what="kernel_tuning CV rows")),
        "candidates": MetadataValue.md(comparison_table(rows, ["cv_mean", "cv_std"])),
    })


def tune_kernel(X: np.ndarray, y: np.ndarray, grid: dict, gates: GatePolicy) -> dict:
    """The best kernel configuration by CV on (X, y), and every candidate's score.

    ``grid["kernel"]`` (absent: fidelity) picks the family: fidelity tunes (bandwidth, reps, C),
    projected tunes (bandwidth, reps, gamma, C), best tunes both on the same folds and keeps the
    better CV mean (the fidelity kernel on a tie). ``spec`` is the feature map; ``kernel`` the
    family and, for the projected kernel, its gamma. Candidates are ranked by ``grid["metric"]``
    (the task's judged metric; the task follows from y, :func:`~hybrid_assets.training.models.label_task`)."""
    metric = grid["metric"]
    base = FeatureMapSpec(name=grid["feature_map"], n_qubits=grid["n_qubits"], entanglement=grid["entanglement"])
    reps = [r for r in grid["reps"] if _within_ceilings(replace(base, reps=r), gates)] or [min(grid["reps"])]
    splits = kfold_splits(y, folds=gates.cv_folds, seed=gates.cv_seed)
    family = grid.get("kernel", "fidelity")
    candidates = []
    if family in ("fidelity", "best"):
        candidates += [c.to_dict() | {"kernel": "fidelity"} for c in
                       tune_quantum(X, y, splits, base, metric=metric, bandwidths=grid["bandwidths"], reps=reps,
                                    Cs=grid["Cs"])]
    if family in ("projected", "best"):
        candidates += [{"model": "quantum_svm", "kernel": "projected", **c.to_dict()} for c in
                       tune_gamma(X, y, splits, base, gammas=grid["gammas"], Cs=grid["Cs"],
                                  bandwidths=grid["bandwidths"], reps=reps,
                                  score=lambda K, splits, Cs: cross_validate_Cs(K, y, splits, Cs, metric))]
    candidates.sort(key=lambda c: -c["cv_mean"])  # stable: the fidelity kernel first on a tie
    best = candidates[0]
    spec = replace(base, bandwidth=best["params"]["bandwidth"], reps=best["params"]["reps"])
    kernel = ({"family": "projected", "gamma": best["params"]["gamma"]} if best["kernel"] == "projected"
              else {"family": "fidelity"})
    return {"spec": spec.to_dict(), "kernel": kernel, "C": best["params"]["C"], "grid": grid,
            "n_train": int(len(y)), "cv_metric": metric, "cv_folds": len(splits), "cv_seed": gates.cv_seed,
            "cv_mean": best["cv_mean"], "cv_std": best["cv_std"], "candidates": candidates}


def retune_reason(previous: dict | None, grid: dict, n_train: int, retune_growth: float) -> str | None:
    """Why the kernel must be tuned again, or None to keep ``previous`` (a tuning artifact)."""
    if not isinstance(previous, dict) or "grid" not in previous:
        return "no tuning yet"
    if previous["grid"] != grid:
        return "the grids, the protocol or the embedding dimensions changed"
    growth = n_train / previous["n_train"] - 1.0
    if not 0.0 <= growth <= retune_growth:
        return f"the train split changed by {growth:+.1%} since the tuning (retune_growth {retune_growth:.0%})"
    return None


def ceilings_of(gates: GatePolicy) -> Ceilings:
    """The gate policy's ceilings; a target device no snapshot knows fails the step, naming the known ones."""
    try:
        return Ceilings.of(gates)
    except UnknownDeviceError as unknown:
        raise Failure(description=f"gate_policy.target_devices: {unknown}") from unknown


def _within_ceilings(spec: FeatureMapSpec, gates: GatePolicy) -> bool:
    """Whether ``spec``'s circuit (generic angles) is within the ceilings, logically and, when the
    policy names target devices, after transpilation to each of them."""
    ceilings = Ceilings.of(gates)
    transpiled = (transpile_on_devices(to_openqasm(spec, np.linspace(0.3, 1.1, spec.n_qubits)),
                                       ceilings.target_devices, gates.transpile_settings())
                  if ceilings.target_devices else None)
    return ceilings_gate(circuit_resources(spec), ceilings, transpiled).passed


@asset(automation_condition=ON_NEW_DATA, code_version=FEATURE_MAP_VERSIONS, group_name="quantum", kinds={"pennylane"},
       op_tags=BEFORE_THE_BASELINE,
       check_specs=[AssetCheckSpec("circuit_ceilings", asset="circuit_artifact", blocking=True,
                                   description="Width, depth and two-qubit gates under the ceilings, after "
                                               "decomposition and after transpilation to each target device")])
def circuit_artifact(kernel_tuning: dict, reduced_embeddings: dict, gate_policy: GatePolicy) -> Iterator:
    """The tuned kernel at the registry's current versions: ``spec`` the feature map's spec dict
    (fidelity kernel) or the projected kernel's (family, gamma, feature map), its OpenQASM 2.0
    bound to a reference input, and its size. A projected kernel runs this circuit three times
    per sample, with an X, Y or Z basis rotation before measuring every qubit."""
    fm = FeatureMapSpec.from_dict({**kernel_tuning["spec"], "version": ""})
    kernel = kernel_tuning.get("kernel", {"family": "fidelity"})
    spec = ProjectedKernelSpec(fm, float(kernel["gamma"])) if kernel["family"] == "projected" else fm
    reference_input = reduced_embeddings["X_train"][0]
    resources = circuit_resources(fm)
    ceilings, settings = ceilings_of(gate_policy), gate_policy.transpile_settings()
    openqasm = to_openqasm(fm, reference_input)
    # The device circuits are part of the artifact: a new snapshot or setting is a new data version.
    transpiled = transpile_on_devices(openqasm, dict.fromkeys(known_devices() + ceilings.target_devices), settings)
    artifact = {
        "spec": spec.to_dict(),
        "spec_hash": spec.spec_hash,
        "kernel": kernel,
        "reference_input": reference_input.tolist(),
        "openqasm": openqasm,
        "resources": resources,
        "transpiled": transpiled,
    }
    metadata, check = circuit_report("circuit_artifact", openqasm, resources, ceilings, transpiled=transpiled)
    yield artifact_output(artifact, {
        "kernel": kernel["family"],
        **({"gamma": kernel["gamma"]} if "gamma" in kernel else {}),
        "feature_map": fm.name,
        "circuit_version": circuit_version(spec),
        "spec_hash": spec.spec_hash,
        "transpile_settings": MetadataValue.json(settings.to_dict()),
        "target_devices": ", ".join(ceilings.target_devices) or "none (ceilings judge the logical circuit)",
        **metadata,
    })
    yield check


def merged_stats(stats: list) -> dict:
    """One kernel asset's figures over its engine calls (one on the exact path; K_mm and K_nm on
    the Nyström path): counts and wall time summed, the rest from the first call."""
    rows = [s.to_dict() for s in stats]
    summed = ("entries_computed", "entries_from_cache", "circuits_executed", "shots_executed", "wall_time_s",
              "retries", "states_simulated", "shots_emulated")
    merged = {**rows[0], **{name: sum(row[name] for row in rows) for name in summed}}
    if len(rows) > 1:
        merged |= {"n_rows": sum(row["n_rows"] for row in rows), "n_cols": rows[0]["n_cols"], "kernel_calls": len(rows)}
    return {key: value for key, value in merged.items() if value is not None}


def kernel_arrays(X: np.ndarray, X_train: np.ndarray | None, plan: KernelPlan, compute,
                  compute_rows=None) -> tuple[dict, list]:
    """The arrays a kernel asset stores, from ``compute(A, B=None) -> KernelResult``.

    Exact path: ``matrix``, the (N, N) Gram matrix of X (``X_train`` None) or test x train.
    Nyström path: ``landmark_indices`` (m,) train rows and, for the train kernel, ``K_mm`` (m, m)
    and ``K_nm`` (N, m); for the test kernel ``matrix`` (n_test, m) against the landmarks; the
    rows x landmarks kernel comes from ``compute_rows(A, landmarks)`` when given (streamed to a
    memory map). Returns (arrays, the engine calls' stats)."""
    if not plan.nystrom:
        result = compute(X, X_train)
        return {"matrix": result.matrix}, [result.stats]
    train = X if X_train is None else X_train
    indices = landmark_indices(train, plan)
    landmarks = train[indices]
    if X_train is None and compute_rows is None:
        return nystrom_train_arrays(X, indices, compute)
    rows = (compute_rows or compute)(X, landmarks)
    if X_train is None:  # streamed, on an exact simulator: no circuit is saved by reusing K_mm's rows
        k_mm = compute(landmarks)
        return {"landmark_indices": indices, "K_mm": k_mm.matrix, "K_nm": rows.matrix}, [k_mm.stats, rows.stats]
    return {"landmark_indices": indices, "matrix": rows.matrix}, [rows.stats]


def nystrom_train_arrays(X: np.ndarray, indices: np.ndarray, compute) -> tuple[dict, list]:
    """The Nyström train kernel's arrays for train rows X (N, d) and landmark ``indices`` (m,):
    K_mm (m, m), then only the N - m other rows against the landmarks; a landmark's row of K_nm
    (N, m) is its row of K_mm (what the planner counts: m(m-1)/2 + (N-m) m circuits)."""
    landmarks = X[indices]
    k_mm = compute(landmarks)
    others = non_landmark_rows(len(X), indices)
    if not len(others):
        return {"landmark_indices": indices, "K_mm": k_mm.matrix, "K_nm": landmark_columns(
            k_mm.matrix, np.empty((0, len(indices))), indices)}, [k_mm.stats]
    rows = compute(X[others], landmarks)
    K_nm = landmark_columns(k_mm.matrix, rows.matrix, indices)
    return {"landmark_indices": indices, "K_mm": k_mm.matrix, "K_nm": K_nm}, [k_mm.stats, rows.stats]


def streams_to_disk(n_rows: int, plan: KernelPlan, backend: BackendConfig, gates: GatePolicy) -> bool:
    """Whether a Nyström rows x landmarks kernel is streamed to a memory map: larger (float64)
    than ``gates.kernel_ram_budget_mb`` on an exact simulator."""
    return plan.nystrom and backend.is_exact and n_rows * plan.landmarks * 8 > gates.kernel_ram_budget_mb * 2**20


def nystrom_kernel_health(arrays: dict, *, shots: int | None, gates: GatePolicy) -> GateResult:
    """The train kernel's gate on the Nyström path: K_mm (the landmarks' own square kernel, a seeded
    sample of the train rows) symmetric, unit diagonal and PSD; K_nm's entries in [0, 1]."""
    square = kernel_health(arrays["K_mm"], shots=shots, symmetry_tolerance=gates.symmetry_tolerance,
                           psd_tolerance=gates.psd_tolerance, psd_shot_factor=gates.psd_shot_factor, square=True)
    rows = kernel_health(arrays["K_nm"], shots=shots, symmetry_tolerance=gates.symmetry_tolerance,
                         psd_tolerance=gates.psd_tolerance, psd_shot_factor=gates.psd_shot_factor, square=False)
    figures = {**{f"K_mm/{k}": v for k, v in square.figures.items()}, **{f"K_nm/{k}": v for k, v in rows.figures.items()}}
    problems = [f"{name}: {g.message}" for name, g in (("K_mm", square), ("K_nm", rows)) if not g.passed]
    return GateResult("kernel_well_formed", not problems, "; ".join(problems) or "well-formed (K_mm and K_nm)", figures)


@dataclass(frozen=True, eq=False)
class KernelJob:
    """One kernel asset's work: the rows ``X`` against ``X_train`` (None: the train Gram matrix of
    ``X``) for the circuit artifact, and the resources it runs under."""

    X: np.ndarray
    X_train: np.ndarray | None
    circuit: dict
    quantum_backend: QuantumBackend
    cost_policy: CostPolicy
    gates: GatePolicy
    dask: DaskCluster

    @property
    def n_train(self) -> int:
        return len(self.X if self.X_train is None else self.X_train)


@dataclass(frozen=True)
class KernelRun:
    """What the engine gave: the arrays and engine calls, or the reason it degraded; the ledger's
    spend; the metadata of a kernel streamed to disk (empty when not)."""

    arrays: dict
    calls: list
    reason: str = ""
    usd: float = 0.0
    streamed: dict = field(default_factory=dict)


def compute_kernel_arrays(job: KernelJob, plan: KernelPlan, backend: BackendConfig, *, run_id: str,
                          asset: str) -> KernelRun:
    """The kernel arrays of ``job`` on ``plan``'s path under the spend ledger (the rows x landmarks
    kernel streamed to a memory map when over the RAM budget); degraded when the backend is still
    failing after the engine's retries."""
    streamed = streams_to_disk(len(job.X), plan, backend, job.gates)
    arrays, calls, reason = {}, [], ""
    with job.cost_policy.ledger(run_id=run_id, asset=asset, backend=backend) as ledger, \
            (job.dask.client_if_enabled() if streamed else nullcontext()) as client:
        def compute(A, B=None):
            return compute_kernel(A, B, spec=kernel_spec(job.circuit["spec"]), backend=backend,
                                  cache=KernelCache(DataLayout.from_env().kernel_cache), ledger=ledger)

        scratch = DataLayout.from_env().scratch_for(run_id, asset)

        def compute_rows(A, landmarks):
            out = scratch_array(scratch, len(A), len(landmarks))
            return streamed_kernel(A, landmarks, spec=kernel_spec(job.circuit["spec"]), backend=backend, out=out,
                                   block_rows=block_rows_of(out), client=client)
        try:
            arrays, calls = kernel_arrays(job.X, job.X_train, plan, compute, compute_rows if streamed else None)
        except BackendUnavailableError as unavailable:  # degraded: nothing streamed is kept
            reason = str(unavailable)
            remove_tree(scratch)
        except BaseException:
            remove_tree(scratch)
            raise
    note = {"streamed_to_disk": f"rows x landmarks kernel over kernel_ram_budget_mb "
                                f"({job.gates.kernel_ram_budget_mb}): written in row blocks to a memory-mapped "
                                ".npy, no entry cache",
            "blocks_engine": MetadataValue.json(job.dask.describe())} if streamed else {}
    return KernelRun(arrays, calls, reason, ledger.usd, note)


def degraded_kernel(reason: str, identity: dict, metadata: dict) -> Iterator:
    """An empty (0, 0) kernel with the reason (and ``identity``: spec hash, backend, kernel path), and
    its (passing) check."""
    info = {"degraded": True, "degraded_reason": reason, **identity}
    yield artifact_output(with_info({"matrix": np.empty((0, 0))}, info), {**metadata, "degraded": True,
                                                                         "degraded_reason": reason})
    yield AssetCheckResult(check_name="kernel_well_formed", passed=True, metadata={"degraded": True, "reason": reason})


def kernel_output(run: KernelRun, plan: KernelPlan, identity: dict, metadata: dict) -> Output:
    """A computed kernel's arrays with ``info`` (``identity``: spec hash, backend, kernel path; and
    its shapes) and ``telemetry`` (the engine's figures)."""
    stats = merged_stats(run.calls)
    shapes = {name: list(value.shape) for name, value in run.arrays.items() if value.ndim == 2}
    info = {"degraded": False, "spec_hash": identity["spec_hash"], "backend": identity["backend"],
            "shape": shapes.get("matrix", shapes.get("K_nm")), "shapes": shapes,
            "kernel_path": identity["kernel_path"]}
    telemetry = {**stats, "estimated_cost_usd": run.usd}
    extra = {"landmarks": plan.landmarks, "landmark_rule": plan.landmark_rule, "landmark_seed": plan.seed,
             "shapes": MetadataValue.json(shapes)} if plan.nystrom else {}
    return artifact_output(with_info(run.arrays, info, telemetry), {
        **metadata,
        **extra,
        "shape": info["shape"],
        "degraded": False,
        "estimated_cost_usd": run.usd,
        **stats,
    })


def kernel_check(arrays: dict, *, nystrom: bool, square: bool, shots: int | None,
                 gates: GatePolicy) -> AssetCheckResult:
    """The ``kernel_well_formed`` check of a computed kernel (``square``: the train kernel)."""
    if nystrom and square:
        health = nystrom_kernel_health(arrays, shots=shots, gates=gates)
    else:
        health = kernel_health(arrays["matrix"], shots=shots, symmetry_tolerance=gates.symmetry_tolerance,
                               psd_tolerance=gates.psd_tolerance, psd_shot_factor=gates.psd_shot_factor,
                               square=square)
    return AssetCheckResult(check_name="kernel_well_formed", passed=health.passed,
                            metadata={"message": health.message, **health.figures})


def _quantum_kernel_asset(context: AssetExecutionContext, job: KernelJob) -> Iterator:
    """Compute a kernel within budget, record what it ran and which path (exact or Nyström, and
    why), gate its shape. Degrade (an empty (0, 0) kernel, never a crash) when the backend is
    disabled or still failing after the engine's retries; a plan over budget is refused by the
    ledger before anything is sent."""
    backend = job.cost_policy.with_program_sets(job.quantum_backend.backend_config())
    asset = context.asset_key.to_user_string()
    plan = kernel_plan(job.n_train, job.gates)
    common = {"backend": MetadataValue.json(job.quantum_backend.describe()), "spec_hash": job.circuit["spec_hash"],
              "kernel_path": plan.path, "kernel_path_reason": plan.reason}
    if not job.quantum_backend.enabled:
        run = KernelRun({}, [], "quantum backend disabled by configuration (quantum_backend.enabled = false)")
    else:
        run = compute_kernel_arrays(job, plan, backend, run_id=context.run_id, asset=asset)
        common |= run.streamed
    identity = {"spec_hash": job.circuit["spec_hash"], "backend": backend.cache_key(), "kernel_path": plan.to_dict()}
    if run.reason:
        context.log.warning(f"{asset}: quantum stage degraded, the classical path carries on: {run.reason}")
        yield from degraded_kernel(run.reason, identity, common)
        return
    yield kernel_output(run, plan, identity, common)
    yield kernel_check(run.arrays, nystrom=plan.nystrom, square=job.X_train is None, shots=backend.shots,
                       gates=job.gates)


def _kernel_check(asset: str) -> AssetCheckSpec:
    return AssetCheckSpec("kernel_well_formed", asset=asset, blocking=True,
                          description="Symmetric, unit diagonal, PSD within tolerance (train; K_mm on the Nyström "
                                      "path); entries in [0, 1]")


@asset(automation_condition=ON_NEW_DATA, code_version="4", group_name="quantum", pool="quantum",
       kinds={"pennylane", "numpy"}, check_specs=[_kernel_check("quantum_kernel_train")])
def quantum_kernel_train(context: AssetExecutionContext, reduced_embeddings: dict, circuit_artifact: dict,
                         quantum_backend: QuantumBackend, cost_policy: CostPolicy, gate_policy: GatePolicy,
                         dask: DaskCluster) -> Iterator:
    """Exact path: ``matrix``, the Gram matrix of the train embeddings (n_train, n_train), entries
    in [0, 1], (0, 0) when degraded. Nyström path (above ``gate_policy.max_exact_train`` train rows
    under kernel_path auto, or forced): ``landmark_indices`` (m,), ``K_mm`` (m, m) and ``K_nm``
    (n_train, m) instead. ``info``: the path and why, backend, spec hash, circuits, cache hits,
    cost, wall time."""
    yield from _quantum_kernel_asset(context, KernelJob(reduced_embeddings["X_train"], None, circuit_artifact,
                                                        quantum_backend, cost_policy, gate_policy, dask))


@asset(automation_condition=ON_NEW_DATA, code_version="4", group_name="quantum", pool="quantum",
       kinds={"pennylane", "numpy"}, check_specs=[_kernel_check("quantum_kernel_test")])
def quantum_kernel_test(context: AssetExecutionContext, reduced_embeddings: dict, circuit_artifact: dict,
                        quantum_backend: QuantumBackend, cost_policy: CostPolicy, gate_policy: GatePolicy,
                        dask: DaskCluster) -> Iterator:
    """Kernel between test and train embeddings: ``matrix`` (n_test, n_train), or (n_test, m) against
    the landmarks on the Nyström path (then with ``landmark_indices``), entries in [0, 1], (0, 0)
    when degraded; ``info`` as for the train kernel."""
    yield from _quantum_kernel_asset(context, KernelJob(reduced_embeddings["X_test"], reduced_embeddings["X_train"],
                                                        circuit_artifact, quantum_backend, cost_policy, gate_policy,
                                                        dask))


class SvmConfig(Config):
    C: Optional[float] = Field(default=None, gt=0.0, description="SVM regularization; empty: the tuned C (kernel_tuning)")


@asset(automation_condition=ON_NEW_DATA, code_version="5", group_name="models", kinds={"sklearn"})
def quantum_svm(config: SvmConfig, quantum_kernel_train: dict, quantum_kernel_test: dict, reduced_embeddings: dict,
                kernel_tuning: dict) -> Output:
    """SVM on the precomputed quantum kernel with the tuned C, stored as arrays (support indices,
    dual coefficients, intercept); on the Nyström path (the kernels hold landmark columns) a
    least-squares SVM on Nyström features with the same C, stored as :class:`NystromModel` arrays
    (landmarks, projection, coef, intercept) with ``info`` (C, holdout metrics, both kernels' info and the
    versions of its inputs) and ``telemetry`` (both kernels' circuits, cache hits, cost, wall
    time). A degraded quantum stage gives ``{"degraded": [True]}`` with the reason in ``info``.
    Multi-class: one-vs-rest SVMs on the same kernel (dual_coef (K, n_support)); regression: an
    SVR on the standardized target (:func:`fit_quantum_svm`)."""
    C = config.C if config.C is not None else float(kernel_tuning["C"])
    kernels = {"train": info_of(quantum_kernel_train), "test": info_of(quantum_kernel_test)}
    telemetry = {"kernels": {"train": telemetry_of(quantum_kernel_train), "test": telemetry_of(quantum_kernel_test)}}
    info = {"model": "quantum_svm", "C": C, "spec_hash": kernels["train"].get("spec_hash"), "kernels": kernels,
            "inputs": {"quantum_kernel_train": content_hash(quantum_kernel_train),
                       "quantum_kernel_test": content_hash(quantum_kernel_test),
                       "reduced_embeddings": content_hash(reduced_embeddings)}}
    degraded = next((k.get("degraded_reason", "") for k in kernels.values() if k.get("degraded")), "")
    if degraded:
        info |= {"degraded": True, "degraded_reason": degraded}
        return artifact_output(with_info({"degraded": np.array([True])}, info, telemetry),
                               {"C": C, "degraded": True})
    task = task_of(reduced_embeddings)
    model, size, train = fit_quantum_svm(quantum_kernel_train, quantum_kernel_test, reduced_embeddings, C=C,
                                         spec_hash=info["spec_hash"])
    if is_nystrom(model):
        info["kernel_path"] = size.pop("kernel_path")
    elif kernel_path_of(quantum_kernel_train):
        info["kernel_path"] = kernel_path_of(quantum_kernel_train)
    holdout = model_holdout("quantum_svm", model, {"quantum_kernel_test": quantum_kernel_test,
                                                   "reduced_embeddings": reduced_embeddings})
    info |= {"degraded": False, **size, **train, "holdout": holdout}
    if task != "binary":  # a binary artifact keeps the content it had before tasks existed
        info["task"] = task
    path = info.get("kernel_path") or {}
    return artifact_output(with_info(model, info, telemetry), {
        "C": C,
        "degraded": False,
        "task": task,
        "kernel_path": path.get("path", "exact"),
        "kernel_path_reason": path.get("reason", "exact Gram matrix"),
        "model_kind": QUANTUM_MODEL_KINDS[("nystrom" if is_nystrom(model) else "exact", task)],
        **size,
        **train,
        **{f"holdout/{name}": value for name, value in holdout.items()},
    })


QUANTUM_MODEL_KINDS = {
    ("exact", "binary"): "kernel SVM (precomputed Gram matrix)",
    ("exact", "multiclass"): "one-vs-rest kernel SVMs (one precomputed Gram matrix)",
    ("exact", "regression"): "kernel SVR (precomputed Gram matrix, standardized target)",
    ("nystrom", "binary"): "Nyström least-squares SVM",
    ("nystrom", "multiclass"): "Nyström one-vs-rest least-squares SVM",
    ("nystrom", "regression"): "Nyström ridge regression (standardized target)",
}


def fit_quantum_svm(kernel_train: dict, kernel_test: dict, embeddings: dict, *, C: float,
                    spec_hash: str | None) -> tuple[dict, dict, dict]:
    """The quantum SVM for the embeddings' task on the stored kernels: (model arrays, its size,
    its train score). Exact path: :func:`fit_precomputed_svm` on the Gram matrix, size
    ``n_support_vectors`` (the union over the classes for multi-class). Nyström path:
    :func:`fit_nystrom_svm`, size ``landmarks``, ``rank``, ``clipped_eigenvalues`` and the
    ``kernel_path``. The train score is ``train_accuracy``, or ``train_r2`` for regression."""
    task, y_train = task_of(embeddings), embeddings["y_train"]
    if is_nystrom(kernel_train):
        model, path = fit_nystrom_svm(kernel_train, kernel_test, embeddings, C=C,
                                      kernel={"kind": "quantum", "spec_hash": spec_hash})
        size = {"landmarks": int(path["m"]), "rank": int(path["rank"]), "clipped_eigenvalues": int(path["clipped"]),
                "kernel_path": path}
        decision = NystromModel.from_arrays(model).decision(kernel_train["K_nm"])
    else:
        model = fit_precomputed_svm(kernel_train["matrix"], y_train, C=C, task=task)
        size = {"n_support_vectors": int(model["support"].size)}
        decision = precomputed_decision(model, kernel_train["matrix"])
    name = "r2" if task == "regression" else "accuracy"
    return model, size, {f"train_{name}": holdout_metric(y_train, decision, name, task=task)}


def kernel_path_of(kernel: dict) -> dict:
    """The kernel path a kernel artifact recorded (empty for artifacts made before it was recorded)."""
    return dict(info_of(kernel).get("kernel_path") or {})


def fit_nystrom_svm(kernel_train: dict, kernel_test: dict, embeddings: dict, *, C: float,
                    kernel: dict) -> tuple[dict, dict]:
    """The Nyström least-squares SVM from the stored K_mm and K_nm (streamed in row blocks), as
    arrays (:meth:`NystromModel.to_arrays`) plus ``landmark_indices``; and the path's description
    (the kernels' plan with the fitted map's rank and clipped eigenvalues). The test kernel must
    be against the same landmarks. The embeddings' task sets the targets (:class:`TargetCoding`)."""
    indices = np.asarray(kernel_train["landmark_indices"])
    if not np.array_equal(indices, np.asarray(kernel_test.get("landmark_indices", []))):
        raise ValueError("quantum_kernel_test was computed against other landmarks than quantum_kernel_train: "
                         "materialize both kernels under the same gate_policy")
    plan = kernel_path_of(kernel_train)
    config = KernelPlan(**{k: plan[k] for k in KernelPlan.__dataclass_fields__}).nystrom_config(C)
    K_nm, y = kernel_train["K_nm"], embeddings["y_train"]
    blocks = ((block, y[rows]) for rows, block in iter_row_blocks(K_nm, config.block_rows))
    fitted = nystrom_model(kernel_train["K_mm"], blocks, landmarks=embeddings["X_train"][indices], indices=indices,
                           config=config, kernel=kernel, coding=TargetCoding.of(y, task_of(embeddings)))
    return fitted.to_arrays(), {**plan, **{k: fitted.meta[k] for k in ("m", "rank", "clipped", "classifier")}}


class ShotPlanConfig(Config):
    ladder: list[int] = Field(default=list(SHOT_LADDER), description="Shots per circuit to try")
    seeds: int = Field(default=5, ge=2, description="Emulated repeats per rung at most (the std is across them)")
    min_seeds: int = Field(default=2, ge=2, description="Emulated repeats per rung at least: a rung stops there once "
                           "a 99% t interval of its mean excludes exact - tolerance (= seeds: every rung draws seeds)")
    climb: bool = Field(default=True, description="Emulate only the rungs the recommendation needs (the top rung, "
                        "then from the fewest shots up to the first within tolerance) when costs rise with shots; "
                        "False: every rung (the whole curve)")
    tolerance: float = Field(default=0.01, ge=0.0, description="How far below the exact metric a rung may score")
    max_train_rows: int = Field(default=2000, ge=20, description="Train rows the ladder refits on at most (a seeded "
                                "stratified sample above it; every refit is an SVM on this many rows)")


def ladder_split(embeddings: dict, plan: KernelPlan, max_train_rows: int) -> tuple[dict, dict]:
    """The rows the shot ladder emulates on (``X_train``, ``y_train``, ``X_test``, ``y_test``): all of
    them, or a seeded stratified sample of each split above ``max_exact_train``, the train rows then
    cut to at most ``max_train_rows`` the same way (each rung refits on them); and what was sampled."""
    train_rows, test_rows = plan.exact_sample(embeddings["y_train"]), plan.exact_sample(embeddings["y_test"])
    train_rows = train_rows[stratified_sample(embeddings["y_train"][train_rows], max_train_rows, seed=plan.seed)]
    split = {"X_train": embeddings["X_train"][train_rows], "y_train": embeddings["y_train"][train_rows],
             "X_test": embeddings["X_test"][test_rows], "y_test": embeddings["y_test"][test_rows]}
    samples = {"kernel_path": plan.path, "kernel_path_reason": plan.reason,
               "train_sample": sample_note(len(embeddings["y_train"]), train_rows, seed=plan.seed,
                                           what="shot ladder train rows"),
               "test_sample": sample_note(len(embeddings["y_test"]), test_rows, seed=plan.seed,
                                          what="shot ladder test rows")}
    return split, samples


def projected_emulator(spec: KernelSpec, split: dict,
                       seed: int) -> Callable[[int, int], tuple[np.ndarray, np.ndarray]] | None:
    """For a projected kernel, one noisy (train, test) kernel pair per (shots, repeat) from noisy Bloch
    vectors; None (emulate the kernel entries) for a fidelity kernel."""
    if not isinstance(spec, ProjectedKernelSpec):
        return None

    def emulate(shots: int, repeat: int) -> tuple[np.ndarray, np.ndarray]:
        # One noisy measurement of each row serves both kernels, as on a device.
        noisy = BackendConfig(shots=shots, shot_emulation=True, seed=seed * 1000 + repeat)
        k_train, k_test = projected_train_test(split["X_train"], split["X_test"], spec=spec, backend=noisy)
        return k_train.matrix, k_test.matrix
    return emulate


def shot_plan_metadata(plan: ShotPlan) -> dict:
    """The shot plan's metadata: the recommendation, the ladder as a table and as a plot."""
    devices = list(plan.devices)
    rungs = plan.rungs
    skipped = "not emulated"
    table = {f"{r.shots} shots": {"mean": skipped if r.metric_mean is None else r.metric_mean,
                                  "std": skipped if r.metric_std is None else r.metric_std, "seeds": r.seeds,
                                  "kernel_error": r.kernel_mean_abs_error, "worst_entry_error": r.kernel_max_abs_error,
                                  **{f"usd_{name}": r.usd[name] if r.usd[name] is not None else "no price"
                                     for name in devices}} for r in rungs}
    png = shot_plan_png([r.shots for r in rungs], [np.nan if r.metric_mean is None else r.metric_mean for r in rungs],
                        [np.nan if r.metric_std is None else r.metric_std for r in rungs],
                        [r.kernel_mean_abs_error for r in rungs], plan.exact, plan.metric)
    return {
        "recommended_shots": plan.best.shots if plan.best else "none within tolerance",
        f"exact_{plan.metric}": plan.exact,
        "circuits_per_run": plan.circuits,
        "kernel_path": plan.samples["kernel_path"],
        "ladder_sample": MetadataValue.json(plan.samples),
        "emulation": MetadataValue.json(plan.emulation),
        "ladder": MetadataValue.md(comparison_table(table, ["mean", "std", "seeds", "kernel_error", "worst_entry_error",
                                                            *[f"usd_{name}" for name in devices]])),
        "plot": MetadataValue.md(markdown_image(png, "metric and kernel error against shots")),
    }


@asset(automation_condition=ON_NEW_DATA, code_version="3", group_name="quantum", kinds={"numpy"})
def shot_plan(config: ShotPlanConfig, circuit_artifact: dict, kernel_tuning: dict, reduced_embeddings: dict,
              quantum_backend: QuantumBackend, hardware_backend: QuantumBackend, cost_policy: CostPolicy,
              gate_policy: GatePolicy) -> Output:
    """Before paying for a shot-based device: how the holdout metric and the kernel error change
    with shots (emulated from the exact kernels of the tuned spec; the kernel error in closed form
    for a fidelity kernel), each rung's planned cost on the configured device (and on the hardware
    device, when one is set), and the cheapest rung within ``tolerance`` of exact. With ``climb``
    only the rungs that recommendation needs get a metric (the artifact's ``emulation`` says how).
    Nothing is sent to a device."""
    spec, C = kernel_spec(circuit_artifact["spec"]), float(kernel_tuning["C"])
    metric = judged_metric(task_of(reduced_embeddings), gate_policy.metric)
    kernel_path = kernel_plan(len(reduced_embeddings["y_train"]), gate_policy)
    # What a run submits on the chosen path; the ladder itself emulates shots on exact kernels of
    # a seeded stratified sample of each split above max_exact_train.
    circuits = run_circuits(spec, len(reduced_embeddings["X_train"]), len(reduced_embeddings["X_test"]),
                            kernel_path.landmarks if kernel_path.nystrom else None)
    split, samples = ladder_split(reduced_embeddings, kernel_path, config.max_train_rows)
    cache = KernelCache(DataLayout.from_env().kernel_cache)
    train = compute_kernel(split["X_train"], spec=spec, cache=cache).matrix
    test = compute_kernel(split["X_test"], split["X_train"], spec=spec, cache=cache).matrix
    labels = (split["y_train"], split["y_test"])
    exact = holdout_score(train, test, *labels, C=C, metric=metric)
    devices = {"configured": quantum_backend.backend_config()}
    if hardware_backend.device_arn:
        devices["hardware"] = hardware_backend.backend_config()
    stop = SeedStop(exact - config.tolerance, min(config.min_seeds, config.seeds), 1.0 / len(split["y_test"]))
    emulate = projected_emulator(spec, split, gate_policy.cv_seed)
    climb = config.climb and emulate is None and costs_rise_with_shots(
        [rung_usd(devices, circuits, shots, cost_policy)["configured"] for shots in sorted(set(config.ladder))])
    ladder = shot_ladder(train, test, *labels, C=C, metric=metric, ladder=config.ladder, seeds=config.seeds,
                         seed=gate_policy.cv_seed, emulate=emulate, stop=stop, climb=climb)
    rungs = priced_rungs(ladder, devices, circuits, cost_policy)
    plan = ShotPlan(metric, exact, config.tolerance, circuits, samples, devices, rungs,
                    recommend(rungs, exact, tolerance=config.tolerance, device="configured"),
                    emulation_note(seeds=config.seeds, stop=stop, measured=emulate is not None, climb=climb))
    return artifact_output(plan.to_dict(), shot_plan_metadata(plan))
