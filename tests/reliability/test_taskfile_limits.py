"""Hardening h2-h4 of reliability.md: a task file of any shape, depth or size is one error line
(exit 2; 78 for serve at start), and nothing in it ever ends a running serve.

Every case drives the real `cronctl` script; the loader-level properties (fuzzing) are in
tests/taskfile/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.reliability.cfg_helpers import (
    LIMIT,
    Call,
    CfgServe,
    assert_one_error,
    cfg_run_many,
    environment,
    error_names_file_and_line,
    home_with,
    wait_for,
)

TASK = '[tasks.backup]\nschedule = "@daily"\ncommand = "true"\n'

# ---------------------------------------------------------------------------------------------
# h2-h4. A task file of any shape, depth or size is one error line, and never ends serve

MISSHAPEN = [
    # (file text, fragments of the message, the line it names); TASK is [tasks.backup]
    (TASK + 'notify = "failure"\n', ["key 'notify'", "([tasks.NAME.notify]), not a string"], 4),
    ("[defaults]\nsmtp = 1\n" + TASK, ["key 'smtp'", "([defaults.smtp]), not an integer"], 2),
    ("[defaults.smtp.host]\nname = 1\n", ["key 'smtp.host'", "must be a string, not a table"], 1),
    ('[defaults.smtp]\nport = "25"\n', ["key 'smtp.port'", "a whole number, not a string"], 2),
    (TASK + '[tasks.backup.env.PATH]\nx = "y"\n', ["key 'env.PATH'", "not a table"], 4),
    (TASK + '[[tasks.backup.notify]]\non = "failure"\n', ["not an array of tables"], 4),
    (TASK + "after = [1, 2]\n", ["key 'after'", "list of strings; item 1 is an integer"], 4),
    (TASK + "retries = true\n", ["key 'retries'", "a whole number, not a boolean"], 4),
    (TASK + "timeout = 2020-01-01\n", ["key 'timeout'", "not a local date"], 4),
    (TASK + 'description = ["a"]\n', ["key 'description'", "a string, not an array"], 4),
    (TASK + "notify.on = { a = 1 }\n", ["key 'notify.on'", "not a table"], 4),
    (TASK + "notify = { email = [[]] }\n", ["key 'notify.email'", "item 1 is an array"], 4),
    ("[defaults.notify]\ntimeout = 1.5\n" + TASK, ["key 'notify.timeout'", "not a float"], 2),
    ('[[tasks]]\nschedule = "@daily"\n', ["key 'tasks'", "not an array of tables"], 1),
    (TASK + '"ke\\ny" = 1\n', ["key 'ke\\ny'", "unknown key"], 4),
]
# Each case runs `check` and one more of the commands that need the task definitions.
LOADERS = [["list"], ["show", "backup"], ["run-now", "backup"], ["export", "--format", "crontab"]]


def test_h2_every_shape_of_value_is_one_error_line_in_every_command(tmp_path, cronctl_exe):
    """Decided: a value of the wrong kind at any key and depth (a string where a table goes, a
    table where a string goes, an array of tables, a date, a boolean) is exit 2 with one line
    naming the file, the line of the key, the task and the key, and what the key takes in
    TOML's words; a key holding a newline is written `\\n`, keeping the error on one line.
    Before: the line of the task's header (or none) for keys in sub-tables, Python's type names
    (`not dict`), and an error split over two lines by a key with a newline."""
    calls, where = [], []
    for index, (text, _, _) in enumerate(MISSHAPEN):
        home = home_with(tmp_path, f"case{index}", text)
        for args in (["check"], LOADERS[index % len(LOADERS)]):
            calls.append(Call(args, env={"CRONCTL_HOME": str(home)}))
            where.append(index)
    for index, result in zip(where, cfg_run_many(cronctl_exe, calls), strict=True):
        text, fragments, line = MISSHAPEN[index]
        stderr = assert_one_error(result, 2, *fragments)
        path = tmp_path / f"case{index}" / "tasks.toml"
        assert error_names_file_and_line(stderr, path) == line, stderr


DEEP_FILE = TASK + "args = " + "[" * 500 + "]" * 500 + "\n"


def test_h3_a_deeply_nested_file_is_invalid_toml_and_serve_will_not_start(tmp_path, cronctl_exe):
    """Decided: arrays or inline tables nested more than 100 deep are invalid TOML: exit 2 and
    one line with the line where the nesting passes 100; serve started on such a file exits 78
    (EX_CONFIG: systemd does not restart it). Before: RecursionError, a traceback and exit 1 in
    every command, and serve exited 1, which systemd restarted forever."""
    home = home_with(tmp_path, "deep", DEEP_FILE)
    env = {"CRONCTL_HOME": str(home)}
    results = cfg_run_many(
        cronctl_exe, [Call(["check"], env=env), Call(["list"], env=env), Call(["serve"], env=env)]
    )
    for result, code in zip(results, (2, 2, 78), strict=True):
        assert_one_error(result, code, "invalid TOML: arrays or inline tables nested more than")
        assert error_names_file_and_line(result.stderr, home / "tasks.toml") == 4


def test_h3_serve_outlives_reloads_to_any_invalid_file(tmp_path, cronctl_exe):
    """Decided: serve never exits because of the task file: a reload to a file nested 500 deep,
    then to one with `notify = "failure"`, is logged once each and the last good tasks keep
    running; a valid file is then loaded as usual, and serve stops cleanly. Before: the deep
    file's RecursionError escaped the reload and ended serve with a traceback."""
    home = home_with(tmp_path, "home", '[tasks.tick]\nschedule = "@every 1s"\ncommand = "true"\n')
    serve = CfgServe(cronctl_exe, home, "--grace", "5")
    try:
        wait_for(lambda: len(serve.runs("tick")) >= 1, what="a first run of tick")
        invalid = {
            DEEP_FILE: "nested more than 100 deep",
            TASK + 'notify = "failure"\n': "must be a table ([tasks.NAME.notify])",
        }
        for text, logged in invalid.items():
            replacement = home / "tasks.new"
            replacement.write_text(text)
            os.replace(replacement, home / "tasks.toml")
            wait_for(
                lambda logged=logged: logged in serve.log or serve.proc.poll() is not None,
                what=f"'{logged}' in the log",
            )
            assert serve.proc.poll() is None, serve.log
            runs_then = len(serve.runs("tick"))
            wait_for(lambda n=runs_then: len(serve.runs("tick")) >= n + 2, what="tick running")
            assert serve.proc.poll() is None, serve.log
        (home / "tasks.toml").write_text(TASK.replace("@daily", "@every 1s"))
        wait_for(lambda: len(serve.runs("backup")) >= 1, what="the valid file in force")
        assert "Traceback" not in serve.log, serve.log
        assert serve.stop() == 0, serve.log
    finally:
        serve.kill()


# A process that runs its argv under a 1 GiB address-space limit (so that a reader without a
# bound fails at once instead of taking the machine's memory) and prints the largest resident
# size of its children, in KiB.
MEASURED = [
    sys.executable,
    "-c",
    "import resource, subprocess, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(done.returncode)",
]


def test_h4_dev_zero_and_endless_pipes_end_at_once_in_bounded_memory(tmp_path, cronctl_exe):
    """Decided: a task file is read only when it is a regular file (or, for one command, a
    pipe), and at most 16 MiB of it: `--tasks-file /dev/zero` is "not a regular file (a
    character device)", an endless pipe and a file one byte over 16 MiB are "larger than 16 MiB",
    exit 2 in a second and under 100 MB; serve on either exits 78. `import` reads a crontab
    within the same bound. Before: /dev/zero was read until memory ran out (5.8 GB in 4 s),
    by `import` too."""
    over = tmp_path / "over.toml"
    over.write_bytes(b"#" * (16 * 1024 * 1024 + 1))
    exe = " ".join(cronctl_exe)
    cases = [
        ([*cronctl_exe, "--tasks-file", "/dev/zero", "check"], 2, "(a character device)"),
        (["bash", "-c", f"cat /dev/zero | {exe} --tasks-file /dev/stdin list"], 2, "16 MiB"),
        ([*cronctl_exe, "--tasks-file", str(over), "check"], 2, "is larger than 16 MiB"),
        ([*cronctl_exe, "--tasks-file", "/dev/zero", "serve"], 78, "(a character device)"),
        ([*cronctl_exe, "--tasks-file", str(over), "serve"], 78, "is larger than 16 MiB"),
        # The crontab `import` reads is held to the same bound, from a file or a pipe.
        ([*cronctl_exe, "import", "/dev/zero"], 2, "/dev/zero is larger than 16 MiB"),
        (["bash", "-c", f"cat /dev/zero | {exe} import -"], 2, "input is larger than 16 MiB"),
    ]
    for argv, code, fragment in cases:
        started = time.monotonic()
        done = subprocess.run(
            [*MEASURED, *argv], capture_output=True, text=True, env=environment(), timeout=LIMIT
        )
        took = time.monotonic() - started
        result = subprocess.CompletedProcess(argv, done.returncode, "", done.stderr)
        assert_one_error(result, code, fragment)
        assert int(done.stdout) < 100 * 1024, f"{argv}: {int(done.stdout) // 1024} MB"
        assert took < 10, f"{argv}: {took:.1f}s"
