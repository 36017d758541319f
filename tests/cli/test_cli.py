"""The console scripts behave like commands: ``--help`` prints usage and exits 0 in an empty
folder, touching neither data nor the instance."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command, says", [
    ("hybrid-demo", "materialize the whole pipeline"),
    ("hybrid-audit", "audit trail"),
    ("hybrid-registry", "{list,show,sign,approve,promote,rollback}"),
    ("hybrid-plan", "--train-rows"),
])
def test_help_prints_usage_and_writes_nothing(tmp_path, command, says):
    home = tmp_path / "dagster_home"  # does not exist: --help must not create an instance
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRID_", "DAGSTER_"))}
    env |= {"DAGSTER_HOME": str(home), "HOME": str(tmp_path / "user")}
    (tmp_path / "user").mkdir()
    result = subprocess.run([str(BIN / command), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {command}") and says in result.stdout
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.iterdir() if p.name != "user")
    assert written == [], written  # no data/ in the folder it ran in, and no instance in DAGSTER_HOME
    assert not home.exists()


def test_a_wrong_argument_is_a_usage_error_not_a_run(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "HYBRID_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([str(BIN / "hybrid-demo"), "--no-such-flag"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "home").exists()


def test_the_registry_and_audit_commands_start_without_the_quantum_and_learning_libraries():
    """hybrid-registry never needs the pipeline's libraries, and hybrid-audit only once it walks a
    trail or rescores: importing either leaves PennyLane, scikit-learn and Dask unimported (the
    slices build their definitions on first use of ``defs``)."""
    probe = ("import sys, hybrid_assets.cli.registry, hybrid_assets.cli.audit; "
             "print(sorted(m for m in ('pennylane', 'sklearn', 'distributed') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
