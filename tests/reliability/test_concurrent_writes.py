"""Fault scenarios 6-9 of reliability.md: writers of the task file that meet each other, an
editor, a symbolic link or a file that is not a regular one.

Every case drives the real `cronctl` script (README.md#exit-codes): nothing written is ever
lost, a refused write leaves the file byte-identical, and a lock held too long is exit 75.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
import tomllib
from pathlib import Path

from tests.reliability.cfg_helpers import (
    LIMIT,
    assert_one_error,
    cfg_run,
    driver,
    environment,
)

GOOD = '# my tasks\n[tasks.a]\nschedule = "@daily"   # nightly\ncommand = "true"\n'

# ---------------------------------------------------------------------------------------------
# 6, 7. Concurrent adds


def test_s06_fifty_concurrent_adds_keep_everything(tasks_path, cronctl_exe):
    """Decided: 50 `cronctl add` at once, on a file with comments and a task: all exit 0 (the
    lock waits up to 30 s), 51 tasks, the original text kept byte for byte at the top, no
    temporary files left, one lock file beside the task file (never replaced), the file
    valid for `check`."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(GOOD)
    env = environment()
    procs = [
        subprocess.Popen(
            [*cronctl_exe, "add", f"task{i}", "@daily", f"echo {i}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(50)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 50, errors
    assert not any("Traceback" in e for e in errors)
    text = tasks_path.read_text()
    assert text.startswith(GOOD)
    assert set(tomllib.loads(text)["tasks"]) == {"a", *(f"task{i}" for i in range(50))}
    names = sorted(p.name for p in tasks_path.parent.iterdir())
    assert names == ["tasks.toml", "tasks.toml.lock"], names
    assert cfg_run(cronctl_exe, "check").returncode == 0


def test_s06_a_lock_held_too_long_is_exit_75_and_changes_nothing(tasks_path, cronctl_exe):
    """Decided: when another writer holds tasks.toml.lock past the wait (30 s; shortened here
    through a hook), `add` gives up with exit 75 (EX_TEMPFAIL: try again, as for serve's lock),
    one error line naming the lock file, and writes nothing. Before it was exit 2, as if the
    input were wrong."""
    import fcntl

    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(GOOD)
    holder = os.open(tasks_path.with_name("tasks.toml.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        setup = "import cronctl.taskfile as t; t.LOCK_WAIT_SECONDS = 0.5"
        started = time.monotonic()
        result = cfg_run(driver(setup), "add", "b", "@daily", "true")
        assert time.monotonic() - started < 20
    finally:
        os.close(holder)
    assert_one_error(result, 75, "tasks.toml.lock", "nothing was written")
    assert tasks_path.read_text() == GOOD


def test_s07_ten_concurrent_adds_of_one_name_one_wins(tasks_path, cronctl_exe):
    """Decided: 10 concurrent `add same ...`: exactly one exits 0, nine exit 2 with "already
    exists" (one error line each), the file holds one [tasks.same] with the winner's command."""
    env = environment()
    procs = [
        subprocess.Popen(
            [*cronctl_exe, "add", "same", "@daily", f"echo {i}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(10)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0] + [2] * 9, (codes, errors)
    for code, stderr in zip(codes, errors, strict=True):
        if code:
            assert stderr.startswith("error: a task named 'same' already exists"), stderr
            assert "Traceback" not in stderr
    winner = codes.index(0)
    text = tasks_path.read_text()
    assert text.count("[tasks.same]") == 1
    assert tomllib.loads(text)["tasks"]["same"]["command"] == f"echo {winner}"


# ---------------------------------------------------------------------------------------------
# 8. An editor saves the file while `add` runs

EDITED = (
    GOOD.replace('command = "true"', 'command = "true"\ndescription = "edited by hand"')
    + "# saved by the editor\n"
)

# Installed before the real CLI runs: the first N times `add` computes its new text (after it
# read the file, before it replaces it), an "editor" saves the file the way editors do
# (write a temporary file, rename it over), adding one comment line each time.
EDITOR_HOOK = """
import os, cronctl.taskfile as t
_real, _saves = t.add_text, {saves}
def add_text(text, *args, **kwargs):
    global _saves
    if _saves:
        _saves -= 1
        path = os.environ["CRONCTL_HOME"] + "/tasks.toml"
        base = {edited!r} if _saves == {saves} - 1 else open(path).read()
        with open(path + ".editor~", "w") as f:
            f.write(base + "# save " + str({saves} - _saves) + "\\n")
        os.replace(path + ".editor~", path)
    return _real(text, *args, **kwargs)
t.add_text = add_text
"""


def test_s08_an_editor_save_during_add_is_kept(tasks_path, cronctl_exe):
    """Decided: optimistic concurrency in taskfile.update(): the bytes `add` parsed are compared
    with the file just before the rename; when an editor saved meanwhile, `add` applies its change
    again to the fresh text. The editor's edit and the new task both survive; exit 0. Before,
    `add` wrote its text made from the old read and the editor's save was lost."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(GOOD)
    result = cfg_run(
        driver(EDITOR_HOOK.format(saves=1, edited=EDITED)), "add", "b", "@hourly", "echo b"
    )
    assert result.returncode == 0, result.stderr
    text = tasks_path.read_text()
    assert text.startswith(EDITED + "# save 1\n"), text
    tasks = tomllib.loads(text)["tasks"]
    assert tasks["a"]["description"] == "edited by hand" and tasks["b"]["command"] == "echo b"
    assert sorted(p.name for p in tasks_path.parent.iterdir()) == ["tasks.toml", "tasks.toml.lock"]


def test_s08_an_editor_that_keeps_saving_makes_add_give_up(tasks_path, cronctl_exe):
    """Decided: after 3 attempts that each lost the race to an editor save, `add` gives up with
    exit 75 ("changed on disk ... nothing was written", try again), and the file is exactly the
    editor's last save."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(GOOD)
    result = cfg_run(
        driver(EDITOR_HOOK.format(saves=10, edited=EDITED)), "add", "b", "@hourly", "echo b"
    )
    assert_one_error(result, 75, "changed on disk", "nothing was written")
    text = tasks_path.read_text()
    assert text == EDITED + "".join(f"# save {n}\n" for n in (1, 2, 3)), text
    assert sorted(p.name for p in tasks_path.parent.iterdir()) == ["tasks.toml", "tasks.toml.lock"]


def test_s08_cronctl_edit_never_overwrites_a_change_made_meanwhile(
    tasks_path, cronctl_exe, tmp_path
):
    """Decided: `cronctl edit` whose file changed while the editor was open (here: a `cronctl add`
    from within the editor) saves nothing, keeps the user's edit in its scratch file and says
    where, exit 75 (try again); the other change stays. The check is made under the task file's
    lock, just before the rename."""
    tasks_path.parent.mkdir(parents=True)
    tasks_path.write_text(GOOD)
    editor = tmp_path / "editor.sh"
    exe = " ".join(f"'{part}'" for part in cronctl_exe)
    editor.write_text(
        f"#!/bin/sh\n{exe} add other @daily true >/dev/null 2>&1\necho '# my edit' >> \"$1\"\n"
    )
    editor.chmod(0o755)
    result = cfg_run(cronctl_exe, "edit", env={"EDITOR": str(editor), "VISUAL": None})
    stderr = assert_one_error(
        result, 75, "changed on disk while you were editing", "your edit is kept in"
    )
    scratch = Path(stderr.split("your edit is kept in ", 1)[1].split("\n", 1)[0])
    try:
        assert scratch.read_text().endswith("# my edit\n")
        assert "other" in tomllib.loads(tasks_path.read_text())["tasks"]
        assert "# my edit" not in tasks_path.read_text()
    finally:
        scratch.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# 9. A symlinked task file

DOTFILE = """\
# cronctl tasks, managed in ~/dotfiles
[defaults]
timeout = "1h"   # every task

# the nightly backup
[tasks.backup]
schedule = "0 2 * * *"  # 02:00
command = "restic backup ~/docs"

[tasks.sync] # inline comment
schedule = "@every 5m"
command = "rsync -a ~/notes server:notes"

# end of file
"""


def test_s09_symlinked_task_file_stays_a_symlink_with_comments_and_mode(
    tmp_path, cronctl_home, cronctl_exe
):
    """Decided: CLI writes resolve the link and replace its target (dotfile managers: stow,
    chezmoi, home-manager): after add, disable, enable and remove the link is still the same
    (relative) link, the target holds the change, every comment line survives, the target keeps
    its mode (0640 here), the lock file lives beside the target, and no temporary file is left
    in either folder. A chain of links works the same way."""
    dotfiles = tmp_path / "dotfiles" / "cronctl"
    dotfiles.mkdir(parents=True)
    target = dotfiles / "tasks.toml"
    target.write_text(DOTFILE)
    target.chmod(0o640)
    cronctl_home.mkdir()
    middle = tmp_path / "middle.toml"
    middle.symlink_to(os.path.relpath(target, middle.parent))
    link = cronctl_home / "tasks.toml"
    link.symlink_to(os.path.relpath(middle, cronctl_home))
    link_text = os.readlink(link)
    for args in (
        ["add", "new", "@hourly", "echo new"],
        ["disable", "backup"],
        ["enable", "backup"],
        ["disable", "sync"],
        ["remove", "new"],
    ):
        result = cfg_run(cronctl_exe, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert link.is_symlink() and os.readlink(link) == link_text and middle.is_symlink()
        text = target.read_text()
        for line in DOTFILE.splitlines():
            if "#" in line:
                assert line in text, (args, line, text)
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    tasks = tomllib.loads(target.read_text())["tasks"]
    assert set(tasks) == {"backup", "sync"} and tasks["sync"]["enabled"] is False
    assert tasks["backup"]["enabled"] is True
    assert sorted(p.name for p in dotfiles.iterdir()) == ["tasks.toml", "tasks.toml.lock"]
    assert sorted(p.name for p in cronctl_home.iterdir()) == ["tasks.toml"]


def test_s09_writes_refuse_a_task_file_that_is_not_a_regular_file(
    tmp_path, cronctl_home, cronctl_exe
):
    """Decided: a task file (or link target) that is a FIFO, a device or a folder is never
    replaced: CLI writes exit 2 ("not a regular file" / "is a folder") before taking the lock,
    and the node is untouched. Before, `cronctl --tasks-file /dev/null add ...` run as root
    replaced /dev/null with a regular file. (Reading a pipe stays possible: `check` and `list`
    accept `--tasks-file <(...)`.)"""
    cronctl_home.mkdir()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    targets = [fifo, folder]
    device = tmp_path / "null.toml"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null
        targets.append(device)
    except (PermissionError, OSError):
        pass  # not root: the FIFO and the folder still show the rule
    for target in targets:
        kind = stat.S_IFMT(os.lstat(target).st_mode)
        link = cronctl_home / "tasks.toml"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        add = ["add", "x", "@daily", "true"]
        for args in (add, ["--tasks-file", str(target), *add]):
            result = cfg_run(cronctl_exe, *args, timeout=20)
            assert_one_error(
                result, 2, "is a folder" if target == folder else "is not a regular file"
            )
        assert stat.S_IFMT(os.lstat(target).st_mode) == kind, target
        assert not (tmp_path / f"{target.name}.lock").exists()
    content = 'printf \'[tasks.a]\\nschedule = "@daily"\\ncommand = "true"\\n\''
    checked = subprocess.run(
        ["bash", "-c", f"{' '.join(cronctl_exe)} --tasks-file <({content}) check"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=LIMIT,
    )
    assert checked.returncode == 0 and "1 task, valid" in checked.stderr, checked.stderr


def test_s09_a_task_file_in_an_unusable_folder_is_one_error_line(tmp_path, cronctl_exe):
    """Decided: when the task file's folder cannot be created or written (a path under a regular
    file, /proc), CLI writes fail with exit 1 (a failure, not invalid input) and one line saying
    what could not be written. Before: NotADirectoryError / FileNotFoundError tracebacks."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    cases = [str(blocker / "tasks.toml")]
    if Path("/proc/version").exists():
        cases.append("/proc/version")
    for path in cases:
        result = cfg_run(cronctl_exe, "--tasks-file", path, "add", "x", "@daily", "true")
        assert_one_error(result, 1, "cannot")
