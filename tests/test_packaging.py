"""Packaging: what `pip install invreq` declares is what the service imports, and the
Makefile's Python check and venv record.

The imports are read from the source (every ``import`` in python/invreq, at any depth), so
a new one cannot land undeclared. The installed wheel itself is exercised by
.ci/wheel-smoke.sh: a clean venv with nothing but the wheel and its dependencies serving
one real request.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from invreq.extras import OPTIONAL_IMPORTS
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "invreq"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _name(requirement: str) -> str:
    return _normal(Requirement(requirement).name)


def _imports(module: Path) -> list[tuple[str, bool]]:
    """(top-level module name, imported at module level?) for every absolute import."""
    tree = ast.parse(module.read_text(), str(module))
    at_top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], id(node) in at_top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], id(node) in at_top))
    return out


def _third_party() -> dict[str, list[tuple[Path, bool]]]:
    found: dict[str, list[tuple[Path, bool]]] = {}
    for module in sorted(PACKAGE.rglob("*.py")):
        for name, top in _imports(module):
            if name in sys.stdlib_module_names or name in ("invreq", "__future__"):
                continue
            found.setdefault(name, []).append((module.relative_to(ROOT), top))
    return found


def test_every_runtime_import_is_a_declared_dependency() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for name, where in _third_party().items():
        if name in OPTIONAL_IMPORTS:
            continue  # the next test
        dists = {_normal(d) for d in distributions.get(name, [])}
        assert dists, f"{name} (imported by {where[0][0]}) is not installed here"
        if not dists & declared:
            missing.append(f"{name} ({sorted(dists)}, imported by {where[0][0]})")
    assert not missing, "imported but not in [project] dependencies: " + ", ".join(missing)


def test_the_found_imports_include_the_ones_the_issue_named() -> None:
    # The check above is only as good as the walk that finds imports.
    names = set(_third_party())
    assert {"runes", "cryptography", "cbor2", "aiohttp", "coincurve", "hwilib"} <= names


def test_optional_imports_are_lazy_and_their_extras_exist() -> None:
    extras = PROJECT["optional-dependencies"]
    third_party = _third_party()
    for name, (extra, _note) in OPTIONAL_IMPORTS.items():
        assert name in third_party, f"{name} is no longer imported: drop it from extras.py"
        distributions = importlib.metadata.packages_distributions().get(name, [])
        if distributions and extra:  # not installed on a Python the extra skips (hwi, 3.13)
            assert {_normal(d) for d in distributions} & {_name(r) for r in extras[extra]}
        at_top = [str(path) for path, top in third_party[name] if top]
        # Imported at module level, it would be needed by whatever imports that module.
        # postgres.py is itself imported only once --db names PostgreSQL, lnurl.py (and
        # lnurldoor.py, which imports it) only once --lnurl is given.
        assert set(at_top) <= {"python/invreq/store/postgres.py", "python/invreq/lnurl.py"}, (
            name,
            at_top,
        )


def test_supported_pythons_agree_everywhere() -> None:
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^SUPPORTED_PYTHONS := (.*)$", makefile, re.M)
    assert listed is not None
    supported = listed.group(1).split()
    spec = SpecifierSet(PROJECT["requires-python"])
    minors = [f"3.{m}" for m in range(8, 20)]
    assert [v for v in minors if f"{v}.0" in spec] == supported
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in supported
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"CPython {', '.join(supported[:-1])} or {supported[-1]}" in readme
    # hwi's marker and the message that names the Pythons it installs on.
    hwi = Requirement(PROJECT["optional-dependencies"]["hwi"][0])
    assert str(hwi.marker) == 'python_version < "3.13"'
    assert "3.11 or 3.12" in OPTIONAL_IMPORTS["hwilib"][1]


def test_every_test_that_starts_a_device_is_marked_hwilib() -> None:
    """A test that talks to the reference device needs hwilib, which cannot install on 3.13:
    unmarked, it fails there instead of being reported not run (tests/conftest.py)."""
    from conftest import HWILIB_TESTS

    device = re.compile(r"--hwi-device-path|\bDEVICE\b")
    unmarked = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.name in HWILIB_TESTS:
            continue
        source = path.read_text()
        for node in ast.parse(source).body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            marks = [ast.unparse(d) for d in node.decorator_list]
            body = ast.get_source_segment(source, node) or ""
            if node.name == "test_every_test_that_starts_a_device_is_marked_hwilib":
                continue  # its own pattern
            if node.name.startswith("test_") and device.search(body):
                if not any("hwilib" in m for m in marks):
                    unmarked.append(f"{path.name}::{node.name}")
    assert not unmarked, f"start a device but are not marked @pytest.mark.hwilib: {unmarked}"


# --- the Makefile's interpreter check and venv record --------------------------------------


def _fake_python(path: Path, version: str) -> Path:
    """An interpreter that reports ``version`` and makes venvs without pip (fast): the real
    one underneath, so what the Makefile runs is real."""
    major, minor = version.split(".")
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then\n'
        f'  exec {sys.executable} -c "import sys; sys.version_info = ({major}, {minor}, 0); '
        f'sys.base_prefix = \'/fake/{version}\'; exec(sys.argv[1])" "$2"\n'
        "fi\n"
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
        f'  shift 2; exec {sys.executable} -m venv --without-pip "$@"\n'
        "fi\n"
        f'exec {sys.executable} "$@"\n'
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.fail("GNU make is required for this test")
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _make(checkout: Path, python: Path | str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "-s", ".venv/.interpreter", f"PYTHON={python}"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_unsupported_python_is_one_line_naming_the_versions(checkout: Path) -> None:
    p = _make(checkout, _fake_python(checkout / "py310", "3.10"))
    assert p.returncode != 0
    first, *rest = p.stderr.splitlines()
    assert first.startswith("invreq needs CPython 3.11, 3.12 or 3.13 (hardware signing: 3.11 or")
    assert "py310 is cpython 3.10" in first
    assert all(line.startswith("make: ***") for line in rest)
    assert not (checkout / ".venv").exists()


def test_missing_python_is_one_line(checkout: Path) -> None:
    p = _make(checkout, "python3.99")
    assert p.returncode != 0
    assert p.stderr.splitlines()[0].startswith(
        "invreq needs CPython 3.11 3.12 3.13: 'python3.99' is not installed"
    )


def test_a_venv_made_by_another_python_is_rebuilt(checkout: Path) -> None:
    a = _fake_python(checkout / "py-a", "3.11")
    b = _fake_python(checkout / "py-b", "3.12")
    p = _make(checkout, a)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("==> .venv: creating it with ")
    assert (checkout / ".venv" / ".interpreter").read_text() == "cpython 3.11 /fake/3.11\n"
    (checkout / ".venv" / "marker").touch()

    p = _make(checkout, a)  # same interpreter: reused, silently
    assert (p.returncode, p.stdout) == (0, "")
    assert (checkout / ".venv" / "marker").exists()

    p = _make(checkout, b)  # another one: rebuilt
    assert p.returncode == 0, p.stderr
    assert "creating it with" in p.stdout and "cpython 3.12 /fake/3.12" in p.stdout
    assert not (checkout / ".venv" / "marker").exists()
    assert (checkout / ".venv" / ".interpreter").read_text() == "cpython 3.12 /fake/3.12\n"
