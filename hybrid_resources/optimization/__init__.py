"""Pattern 3: constrained problems (portfolio selection, max-cut), their QUBOs, QAOA candidate
generation, classical heuristics, and classical ranking of the quantum candidates."""

__all__ = ["maxcut", "pipeline", "portfolio", "problem", "qaoa", "ranking", "returns_contract"]
