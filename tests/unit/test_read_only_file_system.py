"""Lambda's file system is read-only but /tmp: a function's worker refuses every other write with EROFS, as Lambda
does, and keeps its code read-only even where a clone of this project sits under /tmp."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
# Run with the task root as its working directory, holding `existing` (a file), `package/` and `module.py`.
ATTEMPTS = """
import json, os, sys, tempfile
sys.path.insert(0, os.environ["PROJECT"])
from local.runtime.filesystem import refuse_writes_outside_tmp
refuse_writes_outside_tmp()

def attempt(operation):
    try:
        operation()
    except OSError as error:
        return error.errno
    return None

print(json.dumps({
    "open for writing": attempt(lambda: open("new", "w")),
    "open for appending": attempt(lambda: open(os.path.abspath("existing"), "a")),
    "os.open read and write": attempt(lambda: os.close(os.open("existing", os.O_RDWR))),
    "mkdir": attempt(lambda: os.mkdir("made")),
    "remove": attempt(lambda: os.remove("existing")),
    "rename": attempt(lambda: os.rename("existing", "renamed")),
    "rename into the task root": attempt(lambda: os.rename(tempfile.mkstemp()[1], "moved")),
    "chmod": attempt(lambda: os.chmod("existing", 0o777)),
    "symlink": attempt(lambda: os.symlink("existing", "linked")),
    "rmdir": attempt(lambda: os.rmdir("package")),
    "a library's directory": attempt(lambda: open(os.path.join(os.path.dirname(json.__file__), "new"), "w")),
    "read": attempt(lambda: open("existing").read()),
    "makedirs of an existing directory": attempt(lambda: os.makedirs("package", exist_ok=True)),
    "import": attempt(lambda: __import__("module")),
    "temporary file": attempt(lambda: tempfile.NamedTemporaryFile().close()),
    "/dev/null": attempt(lambda: open(os.devnull, "w").close()),
}))
"""
REFUSED = [
    "open for writing",
    "open for appending",
    "os.open read and write",
    "mkdir",
    "remove",
    "rename",
    "rename into the task root",
    "chmod",
    "symlink",
    "rmdir",
    "a library's directory",
]
ALLOWED = ["read", "makedirs of an existing directory", "import", "temporary file", "/dev/null"]


@pytest.fixture(scope="module")
def task_root(tmp_path_factory) -> Path:
    """A task root under /tmp, where a clone may sit: still read-only, being the working directory."""
    root = tmp_path_factory.mktemp("task-root")
    (root / "existing").write_text("code")
    (root / "package").mkdir()
    (root / "module.py").write_text("VALUE = 1\n")
    return root


@pytest.fixture(scope="module")
def outcomes(task_root) -> dict[str, int | None]:
    done = subprocess.run(
        [sys.executable, "-c", ATTEMPTS],
        cwd=task_root,
        env={"PROJECT": str(PROJECT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("operation", REFUSED)
def test_a_write_outside_tmp_is_refused_as_on_a_read_only_file_system(outcomes, operation):
    assert outcomes[operation] == errno.EROFS


@pytest.mark.parametrize("operation", ALLOWED)
def test_reading_importing_and_writing_in_tmp_still_work(outcomes, operation):
    assert outcomes[operation] is None


def test_the_task_root_is_left_as_it_was(outcomes, task_root):
    assert sorted(path.name for path in task_root.iterdir()) == ["existing", "module.py", "package"]
    assert (task_root / "existing").read_text() == "code"
