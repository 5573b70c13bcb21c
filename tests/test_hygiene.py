"""Repository hygiene: nothing generated is committed, background services write under
var/, and a test run that leaves an untracked file in the checkout fails
(tests/repository_hygiene.py, exercised here on a throwaway repository)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")

TESTS = """
from pathlib import Path


def test_clean(tmp_path):
    (tmp_path / "scratch.txt").write_text("fine: a temporary directory")


def test_ignored():
    Path("build").mkdir(exist_ok=True)
    (Path("build") / "output.log").write_text("fine: git-ignored")


def test_litter():
    if Path("LITTER").exists():
        Path("leftover.sqlite").write_text("not fine")
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        [GIT or "git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout of its own with a test module, a .gitignore and one untracked file that was
    there before any run."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "test_things.py").write_text(TESTS)
    (repo / ".gitignore").write_text("/build/\n__pycache__/\n.pytest_cache/\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "start")
    (repo / "notes-in-progress.txt").write_text("untracked before the run: not the run's doing")
    return repo


def run_pytest(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    clean.update({"PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.repository_hygiene",
            "-p",
            "no:django",
            "-p",
            "no:env",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=repo,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_git
def test_a_run_that_leaves_an_untracked_file_fails_and_names_it(repo: Path) -> None:
    (repo / "LITTER").write_text("")
    git(repo, "add", "LITTER")
    result = run_pytest(repo)
    assert result.returncode == 1, result.stdout
    assert "3 passed" in result.stdout  # every test passed: the leftover alone fails the run
    assert "leftover.sqlite" in result.stdout
    assert "notes-in-progress.txt" not in result.stdout and "output.log" not in result.stdout


@needs_git
def test_a_run_writing_only_to_temporary_and_ignored_places_passes(repo: Path) -> None:
    result = run_pytest(repo)
    assert result.returncode == 0, result.stdout


def test_without_git_the_check_is_skipped_with_a_reason(repo: Path) -> None:
    (repo / "LITTER").write_text("")
    result = run_pytest(repo, PATH=str(Path(sys.executable).parent))  # a PATH with python, without git
    assert result.returncode == 0, result.stdout
    assert "untracked-files check skipped: git is not available" in result.stdout


@needs_git
def test_nothing_generated_is_committed() -> None:
    tracked = subprocess.run(
        [
            GIT or "git",
            "ls-files",
            "control",
            "test_webchat",
            "var",
            "*.sqlite3",
            "node_modules",
            "static/vendor",
            "static/css/pygments*.css",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tracked == ""


def test_the_file_broker_keeps_its_exchange_tables_under_its_data_dir(settings: Any) -> None:
    """kombu's default is "control" in whatever directory the worker was started from."""
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the Redis broker keeps no files")
    control = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["control_folder"])
    assert control.is_absolute() and control.parent == Path(settings.CELERY_DATA_DIR)
