"""The package installs as declared: pyproject.toml's metadata mirrors the requirements files,
declares every third-party module the code imports, names real commands, and builds a wheel
that holds every package and data file and runs each command from another folder."""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_readme import README, commands, shell_blocks

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT.get("project", {})
SETUPTOOLS = PYPROJECT.get("tool", {}).get("setuptools", {})
#: The commands users know, each with the file behind its ``python …`` form.
COMMANDS = {
    "nerco-train": "train.py",
    "nerco-test": "test.py",
    "nerco-evaluate": "nerco.evaluate",
    "nerco-export": "nerco.export",
    "nerco-demo-data": "nerco.demo_data",
}
#: The top-level packages the wheel installs (train.py, test.py and nerco/ import all three).
TOP_LEVEL = ("nerco", "options", "data")


def _key(requirement: Requirement) -> tuple:
    """What two spellings of one requirement share: name, extras, pins, marker."""
    return (
        canonicalize_name(requirement.name),
        tuple(sorted(requirement.extras)),
        str(requirement.specifier),
        str(requirement.marker or ""),
    )


def _requirements_file(name: str) -> tuple[dict, list[str]]:
    """The requirements a file lists itself ({name: key}) and the files it includes (-r)."""
    own, included = {}, []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            included.append(line[2:].strip())
        elif line:
            requirement = Requirement(line)
            own[canonicalize_name(requirement.name)] = _key(requirement)
    return own, included


def _declared(strings: list[str]) -> dict:
    keys = [_key(Requirement(s)) for s in strings]
    assert len({k[0] for k in keys}) == len(keys), f"a requirement is listed twice: {strings}"
    return {k[0]: k for k in keys}


def _assert_same(declared: dict, listed: dict, where: str, file: str) -> None:
    missing = sorted(set(listed) - set(declared))
    extra = sorted(set(declared) - set(listed))
    assert not missing, f"{file} lists {missing}, {where} does not"
    assert not extra, f"{where} declares {extra}, {file} does not list them"
    differ = {
        name: (declared[name], listed[name]) for name in declared if declared[name] != listed[name]
    }
    assert not differ, f"{where} and {file} pin differently: {differ}"


def test_dependencies_mirror_requirements_txt():
    listed, included = _requirements_file("requirements.txt")
    assert included == []
    _assert_same(
        _declared(PROJECT["dependencies"]), listed, "[project] dependencies", "requirements.txt"
    )


def test_eval_and_export_extras_mirror_requirements_extras_txt():
    extras = PROJECT["optional-dependencies"]
    eval_, export = _declared(extras["eval"]), _declared(extras["export"])
    assert not set(eval_) & set(export), "eval and export split the extras, without overlap"
    listed, included = _requirements_file("requirements-extras.txt")
    assert included == ["requirements.txt"]
    _assert_same(eval_ | export, listed, "the eval and export extras", "requirements-extras.txt")


def test_dev_extra_mirrors_requirements_dev_txt():
    dev = _declared(PROJECT["optional-dependencies"]["dev"])
    # requirements-dev.txt includes requirements-extras.txt; the dev extra includes both others.
    assert dev.pop("nerco") == ("nerco", ("eval", "export"), "", "")
    listed, included = _requirements_file("requirements-dev.txt")
    assert included == ["requirements-extras.txt"]
    _assert_same(dev, listed, "the dev extra", "requirements-dev.txt")
    # `ruff format --check` gives the same verdict everywhere only with one ruff release.
    assert str(
        Requirement(
            next(s for s in PROJECT["optional-dependencies"]["dev"] if s.startswith("ruff"))
        ).specifier
    ).startswith("==")


def _third_party_imports() -> dict[str, str]:
    """{top-level module: a file importing it} for every non-stdlib import of the package."""
    found = {}
    for folder in TOP_LEVEL:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in TOP_LEVEL:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    """safetensors and huggingface_hub, which open_clip also pulls in, are imported by us."""
    declared = {canonicalize_name(Requirement(s).name) for s in PROJECT["dependencies"]}
    for group in PROJECT["optional-dependencies"].values():
        declared |= {canonicalize_name(Requirement(s).name) for s in group}
    providers = metadata.packages_distributions()
    imported = _third_party_imports()
    assert {"torch", "safetensors", "huggingface_hub", "skimage"} <= set(imported)
    for module, path in imported.items():
        assert module in providers, f"{path} imports {module}, which no installed package provides"
        names = {canonicalize_name(d) for d in providers[module]}
        assert names & declared, f"{path} imports {module} ({sorted(names)}): not declared"


def test_console_scripts_are_the_known_commands():
    scripts = PROJECT["scripts"]
    assert set(scripts) == set(COMMANDS)
    for script, old_form in COMMANDS.items():
        module, _, attr = scripts[script].partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), scripts[script]
        # The console script and its `python …` form run the same main().
        if old_form.endswith(".py"):
            path = ROOT / old_form
        else:
            spec = importlib.util.find_spec(old_form)
            path = Path(spec.origin)
            if spec.submodule_search_locations:  # a package: `python -m` runs its __main__
                path = path.with_name("__main__.py")
        imports = {
            (node.module, alias.name)
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert (module, attr) in imports, f"{old_form} does not run {scripts[script]}"


def test_readme_console_commands_exist_and_accept_their_flags():
    """Each ``nerco-…`` command in the README's shell blocks is a console script that takes
    the flags used (its main() with ``--help`` after them, as test_readme checks the rest)."""
    import contextlib
    import io

    seen = set()
    for block in shell_blocks(README):
        for argv in commands(block):
            if not argv or not argv[0].startswith("nerco-") or tuple(argv) in seen:
                continue
            seen.add(tuple(argv))
            assert argv[0] in PROJECT["scripts"], f"README runs {argv[0]}, which is not declared"
            module, _, attr = PROJECT["scripts"][argv[0]].partition(":")
            main = getattr(importlib.import_module(module), attr)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                with pytest.raises(SystemExit) as exit_info:
                    main([*argv[1:], "--help"])
            assert exit_info.value.code in (0, None), f"{' '.join(argv)}:\n{out.getvalue()}"
            for flag in (a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")):
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", out.getvalue()), (
                    f"{argv[0]} does not accept {flag}"
                )
    assert {argv[0] for argv in seen} == set(COMMANDS), "the README shows every command"


def _source_files(top: str) -> list[Path]:
    return sorted(
        p
        for p in (ROOT / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _code_folders() -> set[str]:
    """Every folder of the source tree that holds Python modules, dotted."""
    return {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL
        for p in (ROOT / top).rglob("*.py")
    }


def _found_packages() -> set[str]:
    """The packages setuptools installs, found as pyproject.toml tells it to."""
    from setuptools.discovery import PEP420PackageFinder

    find = SETUPTOOLS["packages"]["find"]
    return set(
        PEP420PackageFinder.find(
            str(ROOT), include=find["include"], exclude=find.get("exclude", ())
        )
    )


def test_every_code_folder_is_a_package_and_every_data_file_package_data():
    packages = _found_packages()
    package_data = SETUPTOOLS.get("package-data", {})
    assert _code_folders() <= packages, "packages.find misses a folder of modules"
    assert packages - _code_folders() <= set(package_data), "a package with neither code nor data"
    for top in TOP_LEVEL:
        for path in _source_files(top):
            if path.suffix == ".py":
                continue
            parts = path.relative_to(ROOT).parts
            # The innermost package above the file, and the file's path inside it.
            depth = max(d for d in range(1, len(parts)) if ".".join(parts[:d]) in packages)
            package, inside = ".".join(parts[:depth]), "/".join(parts[depth:])
            globs = package_data.get(package, [])
            assert any(fnmatch.fnmatchcase(inside, g) for g in globs), (
                f"{path.relative_to(ROOT)} is not package data: the wheel would lack it"
            )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the sources (offline, without build isolation:
    the setuptools that torch pulls into the venv builds it)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed; the wheel cannot be built offline")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for top in TOP_LEVEL:
        for path in _source_files(top):
            target = source / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    proc = subprocess.run(
        [
            sys.executable,
            *(
                "-m pip wheel --no-deps --no-build-isolation --no-index "
                "--disable-pip-version-check -q"
            ).split(),
            str(source),
            "-w",
            str(tmp / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (tmp / "dist").glob("nerco-*.whl")
    return built


def test_wheel_holds_every_module_data_file_and_command(wheel):
    import nerco

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        fields = archive.read(f"{info}/METADATA").decode()
    sources = {"/".join(p.relative_to(ROOT).parts) for top in TOP_LEVEL for p in _source_files(top)}
    assert sources - names == set(), "the wheel lacks files of the source tree"
    assert {
        "nerco/evaluation/viewer_assets/viewer.css",
        "nerco/evaluation/viewer_assets/viewer.js",
    } <= names
    assert {n.split("/")[0] for n in names} == {*TOP_LEVEL, info}, "only our packages"
    assert f"Version: {nerco.__version__}\n" in fields
    for requirement in PROJECT["dependencies"]:
        assert f"Requires-Dist: {requirement}\n" in fields
    for script, target in PROJECT["scripts"].items():
        assert f"{script} = {target}" in entry_points


#: Run from another folder with only the unpacked wheel added to the path: import the three
#: packages, read the viewer's assets, run each console script's main() with --help.
RUN_INSTALLED = """
import contextlib, io, json, sys
from importlib import import_module
import data, nerco, options
from nerco.evaluation.viewer import ASSETS
commands = json.loads(sys.argv[1])
codes = {}
for name, target in commands.items():
    module, _, attr = target.partition(":")
    sys.argv = [f"/venv/bin/{name}"]  # as the console script's wrapper is called
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            getattr(import_module(module), attr)(["--help"])
            codes[name] = ["returned", ""]
        except SystemExit as exit:
            codes[name] = [exit.code, out.getvalue().splitlines()[0]]
print(json.dumps({"files": [m.__file__ for m in (nerco, options, data)],
                  "assets": sorted(p.name for p in ASSETS.iterdir()), "codes": codes}))
"""


def test_installed_wheel_runs_from_another_folder(wheel, tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_INSTALLED, json.dumps(PROJECT["scripts"])],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    for path in found["files"]:
        assert Path(path).is_relative_to(site), f"imported {path}, not the installed copy"
    assert found["assets"] == ["viewer.css", "viewer.js"]
    for name, (code, usage) in found["codes"].items():
        assert code in (0, None), f"{name} --help exited with {code}"
        assert usage.startswith(f"usage: {name} "), f"{name} --help printed {usage!r}"
