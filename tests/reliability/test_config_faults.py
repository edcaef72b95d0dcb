"""Fault scenarios 1-5 of reliability.md: the task file and the input that reaches it.

Every case drives the real `cronctl` script. What is expected (README.md#exit-codes): an invalid
task file or input is exit 2 with one `error: ...` line (then at most a `hint: ...` line) that
names the file and line, the task and the key; `serve` exits 78 on an invalid file at start;
a refused write leaves the file byte-identical; no traceback, ever.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from cronctl import taskfile
from cronctl.errors import TaskFileError
from tests.reliability.cfg_helpers import (
    Call,
    CfgServe,
    assert_one_error,
    cfg_run,
    cfg_run_many,
    error_names_file_and_line,
    home_with,
    wait_for,
)

GOOD = '# my tasks\n[tasks.a]\nschedule = "@daily"   # nightly\ncommand = "true"\n'

CORRUPT = {
    "truncated": b'[tasks.a]\nschedule = "@daily"\ncommand = "true"\n[tasks.b',
    "duplicate-table": (
        b'[tasks.a]\nschedule = "@daily"\ncommand = "x"\n\n[tasks.a]\nschedule = "@hourly"\n'
    ),
    "duplicate-key": b'[tasks.a]\nschedule = "@daily"\nschedule = "@hourly"\ncommand = "x"\n',
    "binary-garbage": b"\x00\x01\x02\x7fELF\x02\x01\x01" + bytes(range(128, 256)) + b"\n\x00",
    "byte-order-mark": b'\xef\xbb\xbf[tasks.a]\nschedule = "@daily"\ncommand = "true"\n',
    "invalid-utf8": b'[tasks.a]\nschedule = "@daily"\ncommand = "echo caf\xe9"\n',
}

# The commands that write the task file, and one that only reads it: run on every corruption.
WRITERS = [
    ["add", "z", "@daily", "true"],
    ["remove", "a"],
    ["enable", "a"],
    ["disable", "a"],
    ["list"],
]
# Every other command that needs the task file: run on one corruption. (`history`, `status`
# and `metrics` answer from the history with a warning instead: h1, test_cli_hygiene.py.)
READERS = [
    ["check"],
    ["show", "a"],
    ["run-now", "a"],
    ["export", "--format", "crontab"],
]


# ---------------------------------------------------------------------------------------------
# 1. Corrupt TOML


def test_s01_corrupt_task_file_is_one_error_line_and_never_overwritten(tmp_path, cronctl_exe):
    """Decided: every command that needs a corrupt task file (truncated table, duplicate table,
    duplicate key, binary garbage, UTF-8 byte-order mark, invalid UTF-8) exits 2
    (README.md#exit-codes: invalid task file) with `error: PATH:LINE: ...` -- a line number even
    when TOML only says "at end of document" -- at most one hint line, no traceback; writers (add,
    remove, enable, disable) leave the file byte-identical."""
    calls, where = [], []
    for name, content in CORRUPT.items():
        home = home_with(tmp_path, name, content)
        for args in WRITERS + (READERS if name == "truncated" else []):
            calls.append(Call(args, env={"CRONCTL_HOME": str(home)}))
            where.append((name, home))
    results = cfg_run_many(cronctl_exe, calls)
    for (name, home), result in zip(where, results, strict=True):
        assert_one_error(result, 2)
        error_names_file_and_line(result.stderr, home / "tasks.toml")
        assert (home / "tasks.toml").read_bytes() == CORRUPT[name], f"{name}: {result.args}"
        leftovers = [p.name for p in home.iterdir() if p.name.endswith(".tmp")]
        assert not leftovers, leftovers


def test_s01_serve_refuses_to_start_with_a_corrupt_file(tmp_path, cronctl_exe):
    """Decided: `serve` with an invalid task file exits 78 (EX_CONFIG, which the systemd unit
    does not restart) with one `error:` line naming the file and line (and a hint), no traceback,
    and never writes the task file."""
    calls = []
    names = ["truncated", "byte-order-mark", "invalid-utf8"]
    for name in names:
        home = home_with(tmp_path, name, CORRUPT[name])
        calls.append(Call(["serve"], env={"CRONCTL_HOME": str(home)}))
    for name, result in zip(names, cfg_run_many(cronctl_exe, calls), strict=True):
        assert_one_error(result, 78)
        error_names_file_and_line(result.stderr, tmp_path / name / "tasks.toml")
        assert (tmp_path / name / "tasks.toml").read_bytes() == CORRUPT[name]


def test_s01_serve_keeps_the_last_good_tasks_when_an_edit_breaks_the_file(tmp_path, cronctl_exe):
    """Decided: when the file breaks while serve runs, serve logs one error within its reload
    interval (2 s), keeps running the tasks it had, does not log the same error again at each
    poll, and still stops cleanly (exit 0) on SIGTERM."""
    home = home_with(tmp_path, "home", '[tasks.tick]\nschedule = "@every 1s"\ncommand = "true"\n')
    serve = CfgServe(cronctl_exe, home, "--grace", "5")
    try:
        wait_for(lambda: len(serve.runs("tick")) >= 1, what="a first run of tick")
        broken = home / "tasks.new"
        broken.write_bytes(CORRUPT["truncated"])
        os.replace(broken, home / "tasks.toml")  # as editors save
        broke_at = time.monotonic()
        wait_for(lambda: "not reloaded" in serve.log, what="the reload error in serve's log")
        noticed = time.monotonic() - broke_at
        runs_then = len(serve.runs("tick"))
        wait_for(lambda: len(serve.runs("tick")) >= runs_then + 2, what="tick still running")
        time.sleep(2.0)  # two more reload polls
        assert serve.proc.poll() is None, serve.log
        errors = [line for line in serve.log.splitlines() if "not reloaded" in line]
        assert len(errors) == 1, serve.log
        assert str(home / "tasks.toml") in errors[0] and "Traceback" not in serve.log
        assert noticed < 15, f"the broken file was noticed after {noticed:.1f}s"
        assert serve.stop() == 0, serve.log
    finally:
        serve.kill()


# ---------------------------------------------------------------------------------------------
# 2. Unknown keys, wrong types, values out of range

TASK = '[tasks.backup]\nschedule = "@daily"\ncommand = "true"\n'

BAD_FILES = [
    # (file text, fragments of the message, the line it names)
    (
        '[tasks.backup]\nschedual = "@daily"\ncommand = "true"\n',
        ["task 'backup', key 'schedual'", "unknown key", "hint: did you mean 'schedule'?"],
        2,
    ),
    (
        '# comment\n[taks.backup]\nschedule = "@daily"\ncommand = "true"\n',
        ["key 'taks'", "unknown top-level key", "did you mean [tasks]?"],
        2,
    ),
    ("[tasks]\nbackup = 5\n", ["task 'backup'", "must be a table"], 2),
    (TASK + 'timeout = "1 hour"\n', ["key 'timeout'", "'1 hour' is not a duration like 45s"], 4),
    (
        '[tasks.backup]\nschedule = 5\ncommand = "true"\n',
        ["key 'schedule'", "must be a string, not an integer", 'hint: quote it: schedule = "5"'],
        2,
    ),
    (TASK + "timeout = -5\n", ["key 'timeout'", "-5 is not a duration"], 4),
    (TASK + "env = {A = 1}\n", ["key 'env.A'", "must be a string, not an integer"], 4),
    (TASK + "retries = 1.5\n", ["key 'retries'", "must be a whole number"], 4),
    (TASK + 'enabled = "yes"\n', ["key 'enabled'", "must be true or false"], 4),
    (TASK + "keep_runs = 99999999999999999999\n", ["key 'keep_runs'", "must be at most"], 4),
    (
        TASK + "timeout = 99999999999999999999\n",
        ["key 'timeout'", "longer than the limit of 365d"],
        4,
    ),
    (TASK + "jitter = 99999999999999999999\n", ["key 'jitter'", "longer than the limit"], 4),
    (
        TASK + '\n[tasks.backup.notify]\non = ["fail"]\n',
        ["key 'notify.on'", "'fail' is not one of failure"],
        6,
    ),
    (
        TASK + "\n[tasks.backup.notify]\nafter_failures = 99999999999999999999\n",
        ["key 'notify.after_failures'", "must be at most"],
        6,
    ),
    ('[defaults]\ntimout = "1h"\n', ["key 'timout'", "did you mean 'timeout'?"], 2),
]


def test_s02_unknown_keys_and_wrong_types_name_the_key_and_line(tmp_path, cronctl_exe):
    """Decided: exit 2 (invalid input), one error naming file:line, task and key, what is allowed,
    and the nearest known key for a misspelling. `timeout` takes a duration string or whole
    seconds, so "1h" and 3600 are both right; "1 hour", -5, 1.5 are not. Numbers past sane limits
    (durations over 365d, keep_runs over 1e8, after_failures over 1000) are refused when the file
    is read: before, keep_runs = 1e20 was accepted and `prune` died with an OverflowError
    traceback."""
    calls = []
    for index, (text, _, _) in enumerate(BAD_FILES):
        home = home_with(tmp_path, f"case{index}", text)
        calls.append(Call(["check"], env={"CRONCTL_HOME": str(home)}))
    for index, result in enumerate(cfg_run_many(cronctl_exe, calls)):
        text, fragments, line = BAD_FILES[index]
        stderr = assert_one_error(result, 2, *fragments)
        assert (
            error_names_file_and_line(stderr, tmp_path / f"case{index}" / "tasks.toml") == line
        ), stderr


def test_s02_prune_never_meets_an_out_of_range_keep_runs(tmp_path, cronctl_exe):
    """Decided: a keep_runs SQLite cannot hold is an invalid file (exit 2), so `prune`, `serve`'s
    hourly retention and every other reader refuse it with the key named instead of crashing."""
    home = home_with(tmp_path, "home", TASK + "keep_runs = 99999999999999999999\n")
    for args in (["prune"], ["prune", "--dry-run"], ["list"]):
        assert_one_error(
            cfg_run(cronctl_exe, *args, env={"CRONCTL_HOME": str(home)}), 2, "keep_runs"
        )


ADD_OPTIONS = [
    # (extra arguments of `add n @daily true`, a fragment of the error)
    (["--timeout", "1hour"], "key 'timeout'"),
    (["--timeout", "0"], "must be at least 1s"),
    (["--retries", "-1"], "key 'retries'"),
    (["--overlap", "never"], "'never' is not one of skip"),
    (["--catch-up", "sometimes"], "key 'catch_up'"),
    (["--env", "A"], "is not KEY=VALUE"),
    (["--env", "1A=x"], "not a valid environment variable name"),
    (["--env", "A=1", "--env", "A=2"], "--env A is given twice"),
    (["--after", "nosuch"], "unknown task 'nosuch'"),
    (["--notify-on", "fail"], "key 'notify.on'"),
    (["--notify-webhook", "ftp://example.org/x"], "is not an http(s) URL"),
    (["--keep-runs", "0"], "key 'keep_runs'"),
    (["--keep-runs", "99999999999999999999"], "must be at most"),
    (["--jitter", "99999999999999999999"], "longer than the limit"),
    (["--working-dir", ""], "must not be empty"),
    (["--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
]


def test_s02_add_with_a_bad_option_changes_nothing(tmp_path, cronctl_exe):
    """Decided: nothing is partially applied -- `add` with any invalid option value exits 2 with
    one error line naming the key and leaves the file byte-identical (comments included).
    A repeated `--env A=..` is refused rather than keeping the last one silently."""
    calls = []
    for index, (extra, _) in enumerate(ADD_OPTIONS):
        home = home_with(tmp_path, f"case{index}", GOOD)
        calls.append(Call(["add", "n", "@daily", "true", *extra], env={"CRONCTL_HOME": str(home)}))
    for index, result in enumerate(cfg_run_many(cronctl_exe, calls)):
        assert_one_error(result, 2, ADD_OPTIONS[index][1])
        assert (tmp_path / f"case{index}" / "tasks.toml").read_text() == GOOD, ADD_OPTIONS[index]


def test_s02_out_of_range_numbers_on_the_command_line_are_refused(tmp_path, cronctl_exe):
    """Decided: numbers past what the history database can hold are usage errors (exit 2):
    `history --limit`, `prune --keep-runs/--keep-days` get a range; `logs` of a run id no run
    can have says there is no such run; a run id must be ASCII digits (`logs ١٢` is not run 12);
    `history --since 99999999999999999999d` means "all runs". Before: OverflowError tracebacks."""
    cases = [
        (["history", "--limit", "99999999999999999999"], 2),
        (["logs", "99999999999999999999"], 2),
        (["logs", "١٢"], 2),
        (["prune", "--keep-runs", "99999999999999999999", "--dry-run"], 2),
        (["prune", "--keep-days", "99999999999999999999", "--dry-run"], 2),
        (["history", "--since", "99999999999999999999d"], 0),
    ]
    results = cfg_run_many(cronctl_exe, [Call(args) for args, _ in cases])
    for (args, code), result in zip(cases, results, strict=True):
        assert result.returncode == code, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        if code:
            assert result.stderr.startswith(("error: ", "Usage: ")), (args, result.stderr)


# ---------------------------------------------------------------------------------------------
# 3. Invalid cron expressions

BAD_SCHEDULES = [
    ("* * * *", "has 4 fields"),
    ("* * * * * *", "has 6 fields"),
    ("60 * * * *", "minute field: '60' is out of range"),
    ("* 24 * * *", "hour field: '24' is out of range"),
    ("* * 0 * *", "day-of-month field: '0' is out of range"),
    ("* * 32 * *", "day-of-month field: '32' is out of range"),
    ("* * * 13 *", "month field: '13' is out of range"),
    ("* * * * 8", "day-of-week field: '8' is out of range"),
    ("5-1 * * * *", "reversed range"),
    ("*/0 * * * *", "step of 0"),
    ("1,,2 * * * *", "empty list item"),
    ("-5 * * * *", "minute field: '-5' is not valid"),
    ("1- * * * *", "minute field: '1-' is not valid"),
    ("abc", "has 1 field"),
    ("", "empty"),
    ("１ * * * *", "U+FF11"),  # full-width digit one: int() would read it as 1
    ("0 ٣ * * *", "U+0663"),  # Arabic-Indic digit three
    ("0\u00a00 * * *", "U+00A0"),  # no-break space between fields
    ("0 0 * * *\u00a0", "U+00A0"),  # ... and after the last field
    ("\u20030 0 * * *", "U+2003"),  # em space before the first
    ("0 0 * * *\n", "control character"),
    ("0 0 * * mon\u200b", "U+200B"),  # zero-width space
    ("0 0 W15 * *", "day-of-month field: 'W15' is not valid"),
    ("0 0 ? * *", "Quartz"),
    ("0 0 * * 5#6", "#N takes N from 1 to 5"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 2 *", "never fires"),
    ("@fortnightly", "unknown macro"),
    ("@every 0s", "at least 1s"),
    ("@every 99999999999999999999d", "at most 365d"),
    ("@every 366d", "at most 365d"),
]

GOOD_SCHEDULES = [
    ("0\t0\t*\t*\t*", "0 0 * * *"),  # tabs between fields, as crontab allows
    ("0  0 *   * *", "0 0 * * *"),
    (" \t0 0 * * * \t", "0 0 * * *"),  # blanks around the schedule
    ("@every\t5m", "*/5 * * * *"),
    ("@DAILY", "0 0 * * *"),
    ("0 0 * JAN,feb Mon", "0 0 * 1,2 1"),
    ("0 0 L * *", None),
    ("0 0 * * FRI#1", None),
    ("@every 365d", None),
    ("0 0 29 2 *", None),
]


def _file_with_schedule(expr: str) -> str:
    return tomli_w.dumps({"tasks": {"x": {"schedule": expr, "command": "true"}}})


def test_s03_invalid_cron_expressions_are_refused_everywhere(tmp_path, cronctl_exe):
    """Decided: each bad expression is refused with exit 2 and one line saying which field and
    why, the same through `explain`, `add` (file byte-identical) and the task file (`check`
    names file:line, task 'x', key 'schedule'). Only ASCII blanks separate fields: tabs are fine
    (as in crontab) and blanks around the schedule are ignored; a no-break space, any other
    Unicode space, zero-width character or control character anywhere -- also at either end, where
    Python's str.strip used to drop it silently -- is refused with its code point. Non-ASCII
    digits are refused. A schedule that never fires is an error
    (README.md#schedules-that-are-refused). `@every` is at most 365d: longer intervals used to
    overflow (`explain '@every 99999999999999999999d'` was a traceback, and `add` wrote the task
    and then crashed)."""
    calls = []
    for index, (expr, _) in enumerate(BAD_SCHEDULES):
        add_home = home_with(tmp_path, f"add{index}", GOOD)
        calls.append(Call(["explain", "--", expr]))
        calls.append(Call(["add", "--", "x", expr, "true"], env={"CRONCTL_HOME": str(add_home)}))
        if index % 6 == 0:  # the file, through the real `check` too (every case below in-process)
            file_home = home_with(tmp_path, f"file{index}", _file_with_schedule(expr))
            calls.append(Call(["check"], env={"CRONCTL_HOME": str(file_home)}))
    results = iter(cfg_run_many(cronctl_exe, calls))
    for index, (expr, fragment) in enumerate(BAD_SCHEDULES):
        explained, added = next(results), next(results)
        fragment = "must not be empty" if expr == "" else fragment
        assert_one_error(explained, 2, "empty" if expr == "" else fragment)
        assert_one_error(added, 2, fragment)
        assert (tmp_path / f"add{index}" / "tasks.toml").read_text() == GOOD, expr
        path = tmp_path / f"file{index}" / "tasks.toml"
        if index % 6 == 0:
            stderr = assert_one_error(next(results), 2, "task 'x', key 'schedule'", fragment)
            assert error_names_file_and_line(stderr, path) == 2
        with pytest.raises(TaskFileError) as caught:
            taskfile.parse_text(_file_with_schedule(expr), path, default_zone="UTC")
        assert f"{path}:2: task 'x', key 'schedule'" in str(caught.value) and fragment in str(
            caught.value
        )


def test_s03_accepted_spellings_mean_the_same_everywhere(tmp_path, cronctl_exe):
    """Decided: tabs and repeated blanks between fields, blanks around the schedule, macro case,
    names in either case are accepted by `explain`, `add` and the file alike, and mean exactly
    the canonical expression (same fire times)."""
    import json

    calls = []
    window = ["--json", "--count", "8", "--from", "2026-01-01T00:00", "--tz", "UTC", "--"]
    for index, (expr, canonical) in enumerate(GOOD_SCHEDULES):
        calls.append(Call(["explain", *window, expr]))
        if canonical:
            calls.append(Call(["explain", *window, canonical]))
        calls.append(
            Call(
                ["add", "--", "x", expr, "true"],
                env={"CRONCTL_HOME": str(tmp_path / f"add{index}")},
            )
        )
    results = iter(cfg_run_many(cronctl_exe, calls))
    for index, (expr, canonical) in enumerate(GOOD_SCHEDULES):
        explained = next(results)
        assert explained.returncode == 0, (expr, explained.stderr)
        if canonical:
            reference = next(results)
            assert json.loads(explained.stdout)["next"] == json.loads(reference.stdout)["next"], (
                expr
            )
        added = next(results)
        assert added.returncode == 0, (expr, added.stderr)
        path = tmp_path / f"add{index}" / "tasks.toml"
        assert tomllib.loads(path.read_text())["tasks"]["x"]["schedule"] == expr
        assert taskfile.load(path).tasks["x"].schedule == expr  # the file, read back


def test_s03_explain_far_in_the_future_is_an_error_not_a_traceback(cronctl_exe):
    """Decided: fire times past the year 9999 cannot be shown: `explain` says so (exit 2) instead
    of an OverflowError traceback."""
    result = cfg_run(
        cronctl_exe, "explain", "--from", "9999-12-31T23:59", "--tz", "UTC", "--", "* * * * *"
    )
    assert_one_error(result, 2, "year 9999")


# ---------------------------------------------------------------------------------------------
# 4. Invalid time zones

BAD_ZONES = [
    # (zone, fragment of the error or hint)
    ("Europe/Berln", "did you mean 'Europe/Berlin'?"),
    ("europe/berlin", "did you mean 'Europe/Berlin'?"),
    ("America/New_york", "did you mean 'America/New_York'?"),
    ("Europe/Berlin ", "did you mean 'Europe/Berlin'?"),
    ("UTC+2", "'Etc/GMT-2' (POSIX inverts the sign)"),
    ("+02:00", "'Etc/GMT-2'"),
    ("GMT-3", "'Etc/GMT+3'"),
    ("+05:30", "not an offset"),
    ("../../etc/passwd", "unknown time zone '../../etc/passwd'"),
    ("/usr/share/zoneinfo/UTC", "unknown time zone"),
    ("Europe/../UTC", "unknown time zone"),
    ("localtime", "name the zone itself"),
    ("posixrules", "unknown time zone"),
    ("right/UTC", "did you mean 'UTC'?"),
    ("posix/Europe/Berlin", "did you mean 'Europe/Berlin'?"),
    ("Mars/Base", "use an IANA name"),
]


def test_s04_invalid_zones_are_refused_with_a_suggestion(tmp_path, cronctl_exe):
    """Decided: zones must be IANA names. Refused with exit 2 through `explain --tz`,
    `add --tz` and the file: misspellings and wrong case get the nearest name
    (`Europe/Berln` -> did you mean 'Europe/Berlin'?), offsets (`UTC+2`, `+02:00`) get the
    equivalent Etc/GMT zone with its inverted sign, and `localtime`, `posixrules`, `posix/...`
    and `right/...` -- files in the zoneinfo folder that are not zone names (localtime follows
    the machine, so a task would silently change zone) -- are refused too. Path-like names never
    reach the file system."""
    calls = []
    for index, (zone, _) in enumerate(BAD_ZONES):
        add_home = home_with(tmp_path, f"add{index}", GOOD)
        calls.append(Call(["explain", "@daily", "--tz", zone]))
        calls.append(
            Call(["add", "x", "@daily", "true", "--tz", zone], env={"CRONCTL_HOME": str(add_home)})
        )
        if index % 4 == 0:  # the file, through the real `check` too (every case below in-process)
            file_home = home_with(tmp_path, f"file{index}", _file_with_zone(zone))
            calls.append(Call(["check"], env={"CRONCTL_HOME": str(file_home)}))
    results = iter(cfg_run_many(cronctl_exe, calls))
    for index, (zone, fragment) in enumerate(BAD_ZONES):
        explained, added = next(results), next(results)
        assert_one_error(explained, 2, "unknown time zone", fragment)
        assert_one_error(added, 2, "key 'timezone'", fragment)
        assert (tmp_path / f"add{index}" / "tasks.toml").read_text() == GOOD
        path = tmp_path / f"file{index}" / "tasks.toml"
        if index % 4 == 0:
            stderr = assert_one_error(next(results), 2, "task 'x', key 'timezone'", fragment)
            assert error_names_file_and_line(stderr, path) == 4
        with pytest.raises(TaskFileError) as caught:
            taskfile.parse_text(_file_with_zone(zone), path, default_zone="UTC")
        assert f"{path}:4: task 'x', key 'timezone'" in str(caught.value)
        assert fragment in f"{caught.value} {caught.value.hint}"


def _file_with_zone(zone: str) -> str:
    return tomli_w.dumps(
        {"tasks": {"x": {"schedule": "@daily", "command": "true", "timezone": zone}}}
    )


def test_s04_an_empty_zone_is_an_error_not_the_default(tmp_path, cronctl_exe):
    """Decided: `--tz ""` is refused (exit 2), not read as "the machine's zone" (it was, by
    `explain`); `timezone = ""` in the file and `add --tz ""` say it must not be empty."""
    home = home_with(tmp_path, "home", GOOD)
    results = cfg_run_many(
        cronctl_exe,
        [
            Call(["explain", "@daily", "--tz", ""]),
            Call(["add", "x", "@daily", "true", "--tz", ""], env={"CRONCTL_HOME": str(home)}),
        ],
    )
    assert_one_error(results[0], 2, "unknown time zone ''")
    assert_one_error(results[1], 2, "key 'timezone'", "must not be empty")
    assert (home / "tasks.toml").read_text() == GOOD


def test_s04_the_machine_zone_is_named_without_a_copy_folder(cronctl_exe):
    """Decided: since `posix/...` and `right/...` are refused as task zones, a machine whose
    /etc/localtime link points into those folders gets the plain name as its default zone
    (`posix/Europe/Berlin` -> Europe/Berlin), not a silent fall-back to UTC. (Issue 14, item 1
    changed this test: TZ was read first and tested here; TZ is no longer read.)"""
    import json

    from cronctl.schedule.zones import machine_timezone

    for folder in ("posix", "right"):
        target = Path("/usr/share/zoneinfo") / folder / "Europe" / "Berlin"
        if not target.exists():
            continue
        link = Path(tempfile.mkdtemp()) / "localtime"
        link.symlink_to(target)
        assert machine_timezone(link) == "Europe/Berlin"
    result = cfg_run(cronctl_exe, "explain", "@daily", "--json", env={"TZ": "posix/Europe/Berlin"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["timezone"] == machine_timezone()


def test_s04_zone_files_outside_the_zone_folders_are_never_read(tmp_path, cronctl_exe):
    """Decided: a real TZif file reached by `..` from the zone folder, or by an absolute path, is
    not a zone: refused before anything opens it."""
    from zoneinfo import TZPATH

    source = next((Path(p) / "UTC" for p in TZPATH if (Path(p) / "UTC").is_file()), None)
    if source is None:
        pytest.skip("no system zoneinfo folder")
    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copy(source, evil / "Zone")
    relative = os.path.relpath(evil / "Zone", TZPATH[0])
    results = cfg_run_many(
        cronctl_exe,
        [Call(["explain", "@daily", "--tz", zone]) for zone in (relative, str(evil / "Zone"))],
    )
    for result in results:
        assert_one_error(result, 2, "unknown time zone")


def test_s04_missing_zone_data_suggests_installing_tzdata(tmp_path, cronctl_exe):
    """Decided: on a host without zone data (no system tzdata, no `tzdata` package), a zone is
    refused with a hint to install tzdata, not a traceback."""
    shadow = tmp_path / "shadow" / "tzdata"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")  # hides the tzdata package: no zone files in it
    env = {"PYTHONTZPATH": "", "PYTHONPATH": str(tmp_path / "shadow"), "TZ": None}
    results = cfg_run_many(
        cronctl_exe,
        [
            Call(["explain", "@daily", "--tz", "Europe/Berlin"], env=env),
            Call(["add", "x", "@daily", "true", "--tz", "Europe/Berlin"], env=env),
        ],
    )
    for result in results:
        assert_one_error(
            result, 2, "unknown time zone 'Europe/Berlin'", "install it (apt install tzdata"
        )


# ---------------------------------------------------------------------------------------------
# 5. Duplicate and ill-formed task names

BAD_NAMES = [
    "backup ",
    " backup",
    "café",
    "cafe\u0301",
    "../x",
    "a/b",
    "a" * 64,
    "a" * 100,
    ".hidden",
    "_x",
    "-dash",
    "a b",
    "",
    "ａ",
    "x\x1b[31m",
    'a"b',
    "a]b",
]


def test_s05_ill_formed_names_are_refused(tmp_path, cronctl_exe):
    """Decided: the name rule `[A-Za-z0-9][A-Za-z0-9_.-]{0,62}` (ASCII only, so NFC and NFD `café`
    cannot be two look-alike tasks; 63 characters at most) for `add` and in the file: exit 2,
    the rule in the hint, file byte-identical, and the name shown escaped, never raw control
    characters."""
    calls = []
    for index, name in enumerate(BAD_NAMES):
        home = home_with(tmp_path, f"add{index}", GOOD)
        calls.append(Call(["add", "--", name, "@daily", "true"], env={"CRONCTL_HOME": str(home)}))
    for index, name in enumerate(["../x", "café", "a b", "a" * 64]):
        text = tomli_w.dumps({"tasks": {name: {"schedule": "@daily", "command": "true"}}})
        calls.append(
            Call(["check"], env={"CRONCTL_HOME": str(home_with(tmp_path, f"file{index}", text))})
        )
    results = cfg_run_many(cronctl_exe, calls)
    for index, name in enumerate(BAD_NAMES):
        stderr = assert_one_error(results[index], 2, "invalid task name")
        assert "[A-Za-z0-9][A-Za-z0-9_.-]{0,62}" in stderr and "\x1b" not in stderr
        assert (tmp_path / f"add{index}" / "tasks.toml").read_text() == GOOD, repr(name)
    for index, result in enumerate(results[len(BAD_NAMES) :]):
        stderr = assert_one_error(result, 2, "invalid task name")
        assert error_names_file_and_line(stderr, tmp_path / f"file{index}" / "tasks.toml") == 1
    longest = cfg_run(cronctl_exe, "add", "a" * 63, "@daily", "true")
    assert longest.returncode == 0, longest.stderr


def test_s05_duplicate_names_and_names_that_differ_only_in_case(tasks_path, cronctl_exe):
    """Decided: a second `add backup` exits 2 (invalid input) with "already exists" and a
    hint to use --replace; the file is byte-identical. Names are case-sensitive
    (README.md#the-task-file), so `Backup` is a second task -- rarely what is meant, so `add` says
    so in a warning line (exit 0) and `check` warns about the pair (exit 0)."""
    assert cfg_run(cronctl_exe, "add", "backup", "@daily", "true").returncode == 0
    before = tasks_path.read_bytes()
    again = cfg_run(cronctl_exe, "add", "backup", "@hourly", "false")
    assert_one_error(again, 2, "a task named 'backup' already exists", "hint: use --replace")
    assert tasks_path.read_bytes() == before

    twin = cfg_run(cronctl_exe, "add", "Backup", "@daily", "true")
    assert twin.returncode == 0, twin.stderr
    assert twin.stderr.startswith(
        "warning: task names are case-sensitive: 'Backup' is a new task beside 'backup'"
    )
    assert set(tomllib.loads(tasks_path.read_text())["tasks"]) == {"backup", "Backup"}
    checked = cfg_run(cronctl_exe, "check")
    assert checked.returncode == 0
    assert "names differ only in case: Backup, backup" in checked.stderr
    import json

    warnings = json.loads(cfg_run(cronctl_exe, "check", "--json").stdout)["warnings"]
    assert any("differ only in case" in w["message"] for w in warnings)
