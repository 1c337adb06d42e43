"""docs/architecture.md names only what exists: every backticked path is in the repository, every
dotted core/ui name imports, every other backticked name is defined in the code."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
CODE_DIRS = ("core", "ui", "views")


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def resolves(dotted: str) -> bool:
    """core.a.b.name: a module, or an attribute of the longest module prefix that imports."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_every_path_and_name_in_the_architecture_doc_exists():
    text = DOC.read_text(encoding="utf-8")
    code = "\n".join(p.read_text(encoding="utf-8") for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))
    code += (ROOT / "app.py").read_text(encoding="utf-8")
    missing = []
    for token in sorted(backticked(text)):
        if "<" in token or " " in token or token.startswith("python "):
            continue  # a pattern (<checkpoints>/...) or a command, not a name
        if "/" in token or token.endswith((".py", ".md")):
            if not (ROOT / token.rstrip("/")).exists():
                missing.append(token)
        elif token.startswith(("core.", "ui.")):
            if not resolves(token):
                missing.append(token)
        elif re.fullmatch(r"[A-Za-z_]\w*", token):
            if not re.search(rf"\b{token}\b", code):
                missing.append(token)
    assert not missing, f"named in {DOC.name} but not in the code: {missing}"


def test_the_readme_links_the_architecture_doc():
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
