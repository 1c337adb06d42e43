"""The app's first page draws without waiting for the slow libraries (issue 18, start-up): importing
what the first script run imports — app.py's imports (the sidebar and the shared state among them)
and the Lessons and Data pages' — loads none of PyTorch, scikit-learn, openTSNE, Optuna or Ray.
ui.state warms them up in a background thread instead; the bench times the start (app_start_s)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLOW = ("torch", "sklearn", "openTSNE", "optuna", "ray")
FIRST_PAGES = ("app.py", "views/lessons.py", "views/data.py")
# The Lessons page draws no chart and writes no notebook before a step has run.
LESSONS_LATER = ("altair", "pandas", "nbformat")

# Runs in a fresh interpreter: the module-level imports of each file, in the order a first visit runs them.
IMPORT_ONLY = """
import ast, json, sys
for path in sys.argv[1:]:
    tree = ast.parse(open(path).read())
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(imports, type_ignores=[]), path, "exec"), {"__name__": "first_page"})
print(json.dumps(sorted(name for name in %r if name in sys.modules)))
""" % (SLOW + LESSONS_LATER,)


def loaded_after_importing(*paths: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", IMPORT_ONLY, *paths], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_first_page_imports_no_slow_library():
    assert [name for name in loaded_after_importing(*FIRST_PAGES) if name in SLOW] == []


def test_the_lessons_page_imports_no_chart_or_notebook_library():
    assert loaded_after_importing("app.py", "views/lessons.py") == []


def test_the_lazy_packages_still_export_every_name():
    """core.checkpoints, core.data, core.train and core.analysis load their heavy parts on first use; every
    public name is still importable from them, and `import *` gives all of __all__."""
    done = subprocess.run([sys.executable, "-c", (
        "import core.analysis, core.checkpoints, core.data, core.train\n"
        "for package in (core.analysis, core.checkpoints, core.data, core.train):\n"
        "    missing = [n for n in package.__all__ if not hasattr(package, n)]\n"
        "    assert not missing, (package.__name__, missing)\n"
        "    assert set(package.__all__) <= set(dir(package))\n"
        "from core.checkpoints import *\n"
        "from core.checkpoints import load_run, Run\n"
        "from core.train import train, resolve_device\n"
        "assert callable(load_run) and callable(train)\n")], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
