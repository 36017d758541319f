"""A process that loads the code location freezes its heap, and again as it exits
(hybrid_resources.process_heap)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def exit_report(code: str) -> str:
    """What ``code`` printed; a handler registered first runs last, after every other at exit."""
    checker = "import atexit, gc\natexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
    completed = subprocess.run([sys.executable, "-c", checker + code], cwd=REPO, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_loading_the_code_location_freezes_the_heap_and_a_bare_process_does_not():
    assert exit_report("import gc\nimport hybrid_assets.definitions\nprint('frozen:', gc.get_freeze_count() > 0)\n"
                       "gc.unfreeze()") == "frozen: True\nfrozen at exit: True"
    assert exit_report("import hybrid_resources.process_heap") == "frozen at exit: False"


def test_the_exit_freeze_is_registered_once_however_often_the_heap_is_frozen():
    assert exit_report("import atexit, gc\nfrom hybrid_resources.process_heap import freeze_heap\n"
                       "before = atexit._ncallbacks()\nfreeze_heap(); freeze_heap(); gc.unfreeze()\n"
                       "print('callbacks added:', atexit._ncallbacks() - before)") == (
        "callbacks added: 1\nfrozen at exit: True")
