"""Libraries that run circuits and fit models are imported when first used: a process that only
loads the definitions (a code server, an ingest run, hybrid-audit) does not import them."""

import subprocess
import sys

HEAVY = ("pennylane", "sklearn", "scipy", "networkx")


def imported_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has imported after running ``code``."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return eval(result.stdout.strip().splitlines()[-1])


def test_a_stand_in_imports_its_module_when_an_attribute_is_first_read():
    code = ("from hybrid_resources.lazy_modules import module_on_first_use\n"
            "colorsys = module_on_first_use('colorsys')\n"
            "before = 'colorsys' in sys.modules\n"
            "value = colorsys.rgb_to_hsv(1.0, 0.0, 0.0)\n"
            "import colorsys as real\n"
            "assert not before and 'colorsys' in sys.modules, before\n"
            "assert value == real.rgb_to_hsv(1.0, 0.0, 0.0) and colorsys.rgb_to_hsv is real.rgb_to_hsv\n"
            "try:\n"
            "    colorsys.no_such_function\n"
            "except AttributeError as missing:\n"
            "    assert 'no_such_function' in str(missing)\n"
            "else:\n"
            "    raise AssertionError('a missing attribute must raise AttributeError')")
    assert imported_after(code) == []


def test_loading_the_code_location_imports_neither_pennylane_nor_scikit_learn_nor_scipy():
    """What a code server does: build the repository from the definitions."""
    assert imported_after("import hybrid_assets.definitions as d\nd.defs.get_repository_def()") == []


def test_running_a_circuit_or_fitting_a_model_imports_what_it_needs():
    circuit = ("import numpy as np\n"
               "from hybrid_resources.quantum.feature_maps import FeatureMapSpec, to_openqasm\n"
               "assert 'OPENQASM' in to_openqasm(FeatureMapSpec('iqp', n_qubits=2), np.array([0.1, 0.2]))")
    assert "pennylane" in imported_after(circuit)
    fit = ("import numpy as np\n"
           "from hybrid_assets.training.models import fit_classical\n"
           "X = np.random.default_rng(0).normal(size=(20, 3)); y = np.arange(20) % 2\n"
           "assert set(fit_classical('logistic_regression', {'C': 1.0}, X, y)) == {'coef', 'intercept'}")
    assert "sklearn" in imported_after(fit)
