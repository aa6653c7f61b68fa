"""The wheel users install is `django-dbcopy` (`dbcopy` on the index is someone else's) and carries the app."""

import configparser
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(out):
    """Build the project's wheel into `out` from a copy of the sources; return its path.

    A copy, so the build's egg-info and build/ folders never land in the checkout others work in.
    """
    pytest.importorskip("build", reason="`build` is not installed: `pip install -e '.[test]'` (or `make test`) adds it")
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "dbcopy", src / "dbcopy", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out / "dist"), str(src)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, f"python -m build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    wheels = list((out / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_is_django_dbcopy_with_the_dbcopy_package_and_command(tmp_path):
    wheel = build_wheel(tmp_path)

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(f"{dist_info}/entry_points.txt").decode())

    assert metadata["Name"] == "django-dbcopy", metadata["Name"]
    assert wheel.name.startswith("django_dbcopy-"), wheel.name
    # The import name stays `dbcopy`, with the management command Django finds at run time.
    for module in ("dbcopy/__init__.py", "dbcopy/apps.py", "dbcopy/__main__.py", "dbcopy/management/commands/dbcopy.py",
                   "dbcopy/dialects/postgresql.py"):
        assert module in names, f"{module} missing from the wheel: {names}"
    assert not [n for n in names if n.startswith("tests/")], "the test suite should not be installed"
    assert entry_points["console_scripts"]["dbcopy"] == "dbcopy.__main__:main", dict(entry_points["console_scripts"])
    extras = metadata.get_all("Provides-Extra")
    assert {"postgres", "mysql"} <= set(extras), extras
