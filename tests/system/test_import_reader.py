"""The crontab reader, one kind of line at a time (crontab_import.reader.CrontabReader)."""

from __future__ import annotations

import os
import pwd

import pytest

from cronctl.crontab_import import CrontabReader, parse


def read(*lines: str, system: bool = False) -> CrontabReader:
    reader = CrontabReader(system)
    reader.read(list(lines))
    return reader


# --------------------------------------------------------------------------- blank and comment


def test_a_name_comment_names_the_entry_below_and_a_blank_line_forgets_it():
    named = read("# cronctl: nightly - the nightly backup", "0 1 * * * backup.sh").result
    (candidate,) = named.candidates
    assert candidate.wanted_name == "nightly" and candidate.preferred_name == "nightly"
    assert candidate.table["description"] == "the nightly backup"
    forgotten = read("# cronctl: nightly", "", "0 1 * * * backup.sh").result
    (candidate,) = forgotten.candidates
    assert candidate.wanted_name is None and candidate.preferred_name == "backup"
    assert "description" not in candidate.table


def test_a_one_line_comment_describes_the_entry_a_block_does_not():
    described = read("# rotate the logs", "0 1 * * * rotate").result
    assert described.candidates[0].table["description"] == "rotate the logs"
    block = read("# header", "# rotate the logs", "0 1 * * * rotate").result
    assert "description" not in block.candidates[0].table
    for not_a_description in ("# 0 1 * * * old entry", "# FOO=bar", "# @daily x"):
        parsed = read(not_a_description, "0 1 * * * rotate").result
        assert "description" not in parsed.candidates[0].table, not_a_description


def test_an_assignment_forgets_the_name_comment_above_it():
    parsed = read("# cronctl: nightly", "A=1", "0 1 * * * backup.sh").result
    assert parsed.candidates[0].wanted_name is None


# --------------------------------------------------------------------------- NAME=value


def test_shell_other_than_sh_becomes_the_shell_key():
    parsed = read("SHELL=/bin/bash", "0 1 * * * a", "SHELL=/bin/sh", "0 2 * * * b").result
    a, b = parsed.candidates
    assert a.table["shell"] == "/bin/bash" and "shell" not in b.table
    assert "env" not in a.table  # SHELL is a task key, not a variable of the job


def test_an_unknown_tz_goes_to_the_job_and_keeps_the_zone_before_it():
    parsed = read("TZ=Asia/Tokyo", "TZ=Nowhere/Land", "0 1 * * * a").result
    (candidate,) = parsed.candidates
    assert candidate.table["timezone"] == "Asia/Tokyo"
    assert candidate.table["env"] == {"TZ": "Nowhere/Land"}
    assert [p.line for p in parsed.problems] == [2]


def test_j4_mailto_mails_output_and_failures_until_it_is_emptied():
    """Cron mails whatever a job prints to MAILTO; an empty MAILTO mails nothing (both said)."""
    parsed = read(
        "MAILTO=ops@example.org, me@example.org", "0 1 * * * a", 'MAILTO=""', "0 2 * * * b"
    )
    a, b = parsed.result.candidates
    assert a.table["notify"] == {
        "on": ["output", "failure"],
        "email": ["ops@example.org", "me@example.org"],
    }
    assert "notify" not in b.table
    notes = {n.line: n.message for n in parsed.result.notes}
    assert sorted(notes) == [1, 3]
    assert "on output and failure" in notes[1] and "no mail" in notes[3]


@pytest.mark.parametrize(("value", "jitter"), [("5", "5m"), ("0", None)])
def test_random_delay_in_minutes_is_jitter(value: str, jitter: str | None):
    parsed = read(f"RANDOM_DELAY={value}", "0 1 * * * a").result
    assert parsed.candidates[0].table.get("jitter") == jitter and not parsed.problems


def test_random_delay_that_is_not_whole_minutes_is_a_problem():
    parsed = read("RANDOM_DELAY=2.5", "0 1 * * * a").result
    assert parsed.problems[0].reason == "RANDOM_DELAY is not a whole number of minutes"
    assert "jitter" not in parsed.candidates[0].table


@pytest.mark.parametrize(
    "name", ["MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING", "CRON_CORRECT_MAIL_HEADER"]
)
def test_variables_that_only_shape_cron_mail_are_noted_and_dropped(name: str):
    parsed = read(f"{name}=x", "0 1 * * * a").result
    assert parsed.notes[0].message == f"{name} not imported: it only shapes cron's mail"
    assert "env" not in parsed.candidates[0].table


# --------------------------------------------------------------------------- entries


def test_macro_entry():
    parsed = read("@weekly tidy", "@fortnightly tidy", "@daily").result
    assert [c.table["schedule"] for c in parsed.candidates] == ["@weekly"]
    unknown, missing = parsed.problems
    assert unknown.line == 2 and unknown.reason.startswith("unknown macro '@fortnightly'")
    assert missing.reason == "expected a macro, then a command"


def test_timed_entry_keeps_the_command_as_written_after_five_fields():
    parsed = read("*/5\t1 * * MON-FRI   run  --flag  'two  spaces'", "0 1 * * *").result
    assert parsed.candidates[0].table == {
        "schedule": "*/5 1 * * MON-FRI",
        "command": "run  --flag  'two  spaces'",
    }
    assert parsed.problems[0].reason == "expected 5 time fields, then a command"


def test_system_format_drops_the_user_field_and_notes_other_users():
    me = pwd.getpwuid(os.getuid()).pw_name
    other = "cronctl-test-nobody" if me != "cronctl-test-nobody" else "someone-else"
    reader = read(f"0 1 * * * {me} a", f"@daily {other} b", "0 2 * * * c", system=True)
    a, b = reader.result.candidates
    assert (a.table["command"], b.table["command"]) == ("a", "b")
    assert reader.users == {me, other}
    assert reader.result.problems[0].reason == "expected 5 time fields and a user, then a command"
    notes = [n.message for n in reader.result.notes]
    assert "user field" in notes[0] and notes[-1] == f"lines for user {other} will run as {me}"


def test_parse_guesses_the_system_format_from_the_path():
    assert parse("0 1 * * * root a\n", path="/etc/cron.d/job").system
    assert not parse("0 1 * * * a\n", path="/home/me/crontab").system
