"""Tests that need the team's shared data folder skip cleanly without it; no test names a machine's own paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from common import SHARED_ENV

TESTS = Path(__file__).resolve().parent
USERS_OF_SHARED = ("test_device_model.py", "test_dmi_kube.py")


def test_users_of_the_shared_folder_skip_with_one_reason_without_it(tmp_path: Path) -> None:
    env = {**os.environ, SHARED_ENV: str(tmp_path / "no-shared-here")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
         *(str(TESTS / name) for name in USERS_OF_SHARED)],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-3000:]
    skipped = int(re.search(r"(\d+) skipped", summary).group(1)) if "skipped" in summary else 0
    assert skipped >= 13, summary
    reasons = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all(SHARED_ENV in line and "no-shared-here" in line for line in reasons), reasons


def test_no_test_names_an_absolute_path_of_this_machine() -> None:
    pattern = re.compile(r"[\"'](/work|/home|/root)/")
    offenders = [f"{path.name}:{number}" for path in sorted(TESTS.glob("*.py"))
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, offenders
