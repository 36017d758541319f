"""A process that loads the code location freezes its heap as it exits (hybrid_resources.process_exit)."""

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


def test_loading_the_code_location_freezes_the_heap_at_exit_and_a_bare_process_does_not():
    assert exit_report("import hybrid_assets.definitions") == "frozen at exit: True"
    assert exit_report("import hybrid_resources.process_exit") == "frozen at exit: False"


def test_the_freeze_is_registered_once_however_often_it_is_asked_for():
    assert exit_report("import atexit\nfrom hybrid_resources.process_exit import freeze_heap_at_exit\n"
                       "before = atexit._ncallbacks()\nfreeze_heap_at_exit(); freeze_heap_at_exit()\n"
                       "print('callbacks added:', atexit._ncallbacks() - before)") == (
        "callbacks added: 1\nfrozen at exit: True")
