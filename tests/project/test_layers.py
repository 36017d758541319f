"""The house rules of the code, checked on the real tree: the layers contract in pyproject.toml
(import-linter), no import cycle (function-level imports included), a short top level, short
functions and an explicit public surface per package."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hybrid_assets", "hybrid_resources")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the contract of ``tree``'s pyproject.toml, importing from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tree / "pyproject.toml")], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, upward_import", [
    ("hybrid_resources/gate_policy.py", "import hybrid_assets.common.outputs"),
    ("hybrid_assets/training/tuning.py", "from hybrid_assets.evaluation import verdict"),
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward_import):
    """A copy of the tree with one import against the layers (even inside a function) fails."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n\ndef _sneaky():\n    {upward_import}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "0 kept, 1 broken" in result.stdout, result.stdout


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_function_level_imports_included():
    graph = grimp.build_graph(*PACKAGES)  # grimp reads every import statement, in functions too
    edges = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    assert _strongly_connected(edges) == []
    assert _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # the check itself works


def test_at_most_six_plain_modules_at_the_top_of_hybrid_assets():
    plain = sorted(p.name for p in (ROOT / "hybrid_assets").glob("*.py"))
    assert len(plain) <= 6, plain


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_function_is_over_sixty_lines():
    long = [f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
            for name, line, length in _functions(path) if length > 60]
    assert long == []


def test_every_package_states_its_public_surface():
    missing = [str(init.relative_to(ROOT)) for package in PACKAGES for init in sorted((ROOT / package).rglob("__init__.py"))
               if "__all__" not in {t.id for node in ast.parse(init.read_text()).body if isinstance(node, ast.Assign)
                                    for t in node.targets if isinstance(t, ast.Name)}]
    assert missing == []


def test_the_code_points_only_at_files_in_the_repository():
    """Docstrings and comments may name documents, but only ones that ship with the code."""
    named = {"DESIGN.md", "SEED.md"}
    mentions = [f"{path.relative_to(ROOT)}: {word}" for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                for word in named if word in path.read_text()]
    assert mentions == []
