"""The README's commands work as written: every ``python X.py`` / ``python -m X`` /
``torchrun … X.py`` / ``bash scripts/X`` in its shell code blocks names a file or module that
exists and accepts the flags used, and CI runs exactly the README's test command."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import runpy
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")


def shell_blocks(text: str) -> list[str]:
    """Fenced code blocks labelled with a shell language, in order."""
    return [
        body
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
        if lang in SHELL_LANGUAGES
    ]


def commands(block: str) -> list[list[str]]:
    """The simple commands of a block: continuations joined, comments dropped, split at
    ``&&``, ``||``, ``;`` and ``|``."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in lexer:
            if token in ("&&", "||", ";", "|", "&"):
                out.append(command)
                command = []
            else:
                command.append(token)
        out.append(command)
    return [c for c in out if c]


def target(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """("script" | "module" | "bash", path or module name, its arguments), or None."""
    while argv and re.match(r"^[A-Z_]+=", argv[0]):  # VAR=value prefixes
        argv = argv[1:]
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program in ("python", "python3") and len(argv) > 1:
        if argv[1] == "-m":
            return "module", argv[2], argv[3:]
        if argv[1].endswith(".py"):
            return "script", argv[1], argv[2:]
    if program == "torchrun":
        for i, token in enumerate(argv):
            if token.endswith(".py"):
                return "script", token, argv[i + 1 :]
    if program == "bash" and len(argv) > 1 and argv[1].startswith("scripts/"):
        return "bash", argv[1], argv[2:]
    return None


def readme_targets() -> list[tuple[str, str, list[str]]]:
    found = [target(c) for block in shell_blocks(README) for c in commands(block)]
    return [t for t in found if t is not None]


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def help_text(kind: str, name: str, args: list[str]) -> str:
    """Run the command in-process with ``args + --help``: argparse checks the values of the
    options given before --help, then prints the help and exits 0."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    argv = sys.argv
    stdout = io.StringIO()
    try:
        sys.argv = [name, *args, "--help"]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stdout):
            with pytest.raises(SystemExit) as exit_info:
                if kind == "script":
                    runpy.run_path(str(ROOT / name), run_name="__main__")
                else:
                    runpy.run_module(name, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = argv
        root.handlers[:] = handlers
        root.setLevel(level)
    assert exit_info.value.code in (0, None), f"{name} {' '.join(args)}:\n{stdout.getvalue()}"
    return stdout.getvalue()


def check_command(kind: str, name: str, args: list[str]) -> None:
    if kind == "script":
        assert (ROOT / name).is_file(), f"README runs {name}, which does not exist"
    else:
        assert importlib.util.find_spec(name) is not None, f"no module {name}"
    text = help_text(kind, name, args)
    for flag in (a.split("=", 1)[0] for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (
            f"{name} does not accept {flag}"
        )


def test_readme_has_commands():
    kinds = {(kind, name) for kind, name, _ in readme_targets()}
    for expected in [
        ("script", "train.py"),
        ("script", "test.py"),
        ("bash", "scripts/demo.sh"),
        ("bash", "scripts/test.sh"),
        ("module", "nerco.demo_data"),
        ("script", "scripts/arrange_datasets.py"),
    ]:
        assert expected in kinds, expected


def test_quick_start_comes_first_with_the_two_commands():
    quick = [c for block in shell_blocks(section("Quick start")) for c in commands(block)]
    assert quick[:2] == [["bash", "scripts/demo.sh"], ["bash", "scripts/test.sh"]]
    assert README.index("## Quick start") < README.index("## Install")


def test_python_commands_exist_and_accept_their_flags():
    seen = set()
    for kind, name, args in readme_targets():
        if kind != "bash" and (kind, name, tuple(args)) not in seen:
            seen.add((kind, name, tuple(args)))
            check_command(kind, name, args)


def test_bash_scripts_exist_and_document_their_arguments():
    for kind, name, args in readme_targets():
        if kind == "bash":
            script = ROOT / name
            assert script.is_file(), f"README runs {name}, which does not exist"
            for arg in args:
                assert arg in script.read_text(), f"{name} does not handle {arg}"


def test_demo_plan_commands_are_valid():
    """``demo.sh --plan`` prints its commands without running them; each one parses."""
    proc = subprocess.run(
        ["bash", "scripts/demo.sh", "--plan"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Expected: about" in proc.stdout
    planned = [
        line.split(":", 1)[1]
        for line in proc.stdout.splitlines()
        if line.startswith("[plan] ") and not line.startswith("[plan] .venv")
    ]
    assert len(planned) == 4
    for line in planned:
        argv = shlex.split(line)
        argv[0] = "python"  # .venv/bin/python
        kind, name, args = target(argv)
        check_command(kind, name, args)


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run may prepare the machine, but the tests it runs are the README's command."""
    documented = [c for block in shell_blocks(section("Tests")) for c in commands(block)]
    assert len(documented) == 1
    ci = commands((ROOT / ".ci" / "run").read_text())
    runs_tests = [c for c in ci if "pytest" in c or any("scripts/test.sh" in t for t in c)]
    assert runs_tests == documented
