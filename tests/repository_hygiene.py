"""A pytest plugin: a test run leaves the repository as it found it.

Tests write under temporary directories (tmp_path, the per-run database directory) or, at
most, git-ignored ones. A file that appears during the run and that git would list as
untracked fails the run, naming the file: it is how `control/celery.exchange` (kombu's
folder, written into the working directory by a Celery worker a test started) and an empty
`test_webchat` SQLite file got committed once.

Only what appeared between the start and the end of this run counts, so files that were
untracked before it are left alone. Without git (or outside a checkout) the check is skipped
and the run says so. Registered in tests/conftest.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BEFORE = pytest.StashKey["set[str] | None"]()
SKIPPED = pytest.StashKey[str]()


def untracked_files(root: Path) -> set[str] | None:
    """Paths git lists as untracked and not ignored under `root`'s checkout (relative to its
    top); None when git is missing or `root` is not in a checkout."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # --no-optional-locks: never take the index lock, which a concurrent `git add` may hold.
        result = subprocess.run(
            [git, "--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=all", "--ignored=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return {entry[3:] for entry in result.stdout.split("\0") if entry.startswith("?? ")}


def pytest_sessionstart(session: pytest.Session) -> None:
    before = untracked_files(session.config.rootpath)
    session.config.stash[BEFORE] = before
    if before is None:
        session.config.stash[SKIPPED] = "git is not available here (or this is not a git checkout)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    before = session.config.stash.get(BEFORE, None)
    after = untracked_files(session.config.rootpath) if before is not None else None
    if before is None or after is None:
        reason = session.config.stash.get(SKIPPED, "git stopped answering during the run")
        if reporter is not None:
            reporter.write_line(f"untracked-files check skipped: {reason}")
        return
    left = sorted(after - before)
    if not left:
        return
    if reporter is not None:
        reporter.section("files this test run left in the repository", sep="=", red=True, bold=True)
        for path in left:
            reporter.write_line(f"  {path}")
        reporter.write_line(
            "Tests write under tmp_path (or a git-ignored directory); remove these and fix the test that wrote them."
        )
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
