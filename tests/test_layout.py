"""The package's layout holds: imports only point down, modules stay small, no stray commands.

Read from the source files (every import statement, also those inside functions), so the
rules hold for lazy imports too.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "nerco"
#: What each part may import of this project (besides itself and the standard library).
ALLOWED = {
    "nerco.networks": {"nerco.runtime", "nerco.util"},
    "nerco.inference": {
        "nerco.runtime",
        "nerco.util",
        "nerco.networks",
        "nerco.evaluation",
        "data",
        "options",
    },
    "nerco.evaluation": {"nerco.runtime", "nerco.util", "data"},
    "nerco.training": {
        "nerco.runtime",
        "nerco.util",
        "nerco.networks",
        "nerco.evaluation",
        "data",
        "options",
    },
    "data": {"nerco.runtime"},
    "options": {"nerco.runtime", "data"},
}
#: Top-level modules that are commands users know (``python -m nerco.<name>``).
COMMAND_ENTRIES = {"evaluate.py", "export.py", "demo_data.py"}
OURS = ("nerco", "data", "options")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of this project that ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from nerco.networks import build``: the submodule is imported too.
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in OURS}


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _part(module: str) -> str | None:
    for part in sorted(ALLOWED, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return None


def test_nerco_top_level_holds_at_most_six_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 6, modules


@pytest.mark.parametrize(
    "path", _sources("nerco", "data", "options"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_imports_point_down(path):
    part = _part(_module_name(path))
    if part is None:
        return  # the package root and its top modules may use the parts
    allowed = ALLOWED[part] | {part}
    wrong = []
    for name in _imports(path):
        if name in ("nerco", "data", "options"):  # the package faces
            if name != part.split(".")[0] and name not in allowed:
                wrong.append(name)
            continue
        target = _part(name) or name
        if not any(target == a or target.startswith(a + ".") for a in allowed):
            wrong.append(name)
    assert not wrong, f"{path.relative_to(ROOT)} ({part}) imports {sorted(wrong)}"


def test_inference_never_imports_training():
    for path in _sources("nerco/inference"):
        assert not [n for n in _imports(path) if n.startswith("nerco.training")], path


#: Lines of code (:func:`code_lines`) a module may hold, and the most it may hold when its
#: docstring says why it stays whole. Counted without docstrings, comments and blank lines,
#: so that ``ruff format``, which puts long calls one argument per line, and documentation
#: cost nothing: 250 lines of code are about 300 lines as this project writes them.
CODE_LINES, CODE_LINES_WITH_REASON = 250, 300


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip and token.type != tokenize.ENDMARKER:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def test_code_lines_skip_docstrings_comments_and_blank_lines():
    source = (
        '"""Module.\n\nMore."""\n\n# a comment\nimport os\n\n\n'
        'def f(\n    a,\n    b,\n):\n    """Doc."""\n    return (a, b)  # why\n'
    )
    assert code_lines(source) == 6  # import os; def f(; a,; b,; ):; return


@pytest.mark.parametrize(
    "path", _sources("nerco", "data", "options"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_modules_stay_small_or_say_why(path):
    source = path.read_text()
    lines = code_lines(source)
    if lines <= CODE_LINES:
        return
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert lines <= CODE_LINES_WITH_REASON and "stays whole" in docstring, (
        f"{path.relative_to(ROOT)} has {lines} lines of code: split it by its jobs, or say "
        f"in its docstring why it stays whole"
    )


def test_library_modules_have_no_main_blocks():
    stray = []
    for path in _sources("nerco", "data", "options"):
        if path.parent == PACKAGE and path.name in COMMAND_ENTRIES:
            continue
        if '__name__ == "__main__"' in path.read_text():
            stray.append(str(path.relative_to(ROOT)))
    assert not stray, f"commands belong in an entry module or scripts/: {stray}"


def test_tree_is_formatted_and_linted_by_the_pinned_ruff():
    """scripts/test.sh checks the same before pytest; here for a bare ``pytest`` run."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (requirements-dev.txt)")
    pinned = next(
        line.split("==")[1].strip()
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("ruff==")
    )
    version = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout
    if version.split()[-1] != pinned:
        pytest.skip(f"ruff {version.split()[-1]} is not the pinned {pinned}")
    for check in (["format", "--check"], ["check"]):
        proc = subprocess.run([ruff, *check, "."], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("part", ["networks", "training", "inference", "evaluation"])
def test_each_subpackage_says_what_it_holds_and_imports_nothing(part):
    """An ``__init__.py`` per part, with a docstring (what ``help()`` and a reader see first)
    and no imports: importing ``nerco.networks`` costs nothing and cannot form a cycle."""
    init = PACKAGE / part / "__init__.py"
    assert init.is_file(), f"nerco/{part}/ has no __init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"nerco/{part}/__init__.py has no docstring"
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
