"""h18: 2,609 cases from five other cron libraries' test suites, asked of `cronctl.Schedule`.

The cases and their verdicts are a copy of the shared peer-cases set (tests/data/peer-cases/,
README.md and ORIGIN.md there); tests/schedule/peer_cases.py reads each kind of case. A case
passes when cronctl answers as its verdict says:

- no verdict: cronctl agrees with the peer;
- `cronctl-wrong` (cronos-1544: a start at the end of year 9999, h16; cronparser-0131: Apia's
  skipped 2011-12-30, h17): cronctl now agrees;
- `syntax-cronctl-rejects`: cronctl still refuses the expression with a ValueError saying why
  (SYNTAX below: the message must name that syntax). The day cronctl learns the syntax, the
  case must agree with the peer;
- `peer-semantics`: the peer means something else on purpose, and cronctl must still disagree,
  in the way the reason says (RULES below: rejects, accepts, or answers differently). If such
  a case started to agree, cronctl's documented rules would have changed.

The deliberate differences (README.md#schedules and #daylight-saving-time are cronctl's rules,
Vixie/Debian cron's):

- croniter wraps reversed ranges (23-1, FRI-MON) and reads a-a as the whole field; cronctl
  refuses a reversed range and reads a-a as the single value a.
- croniter ORs the day fields whenever neither is exactly '*' (so `*/2` counts as restricted),
  offers an AND mode (day_or=False), intersects DOW#n with a restricted day-of-month, drops a
  '*' listed with DOW#n, maps day-of-week 7/2 to 0,2,4,6; cronctl applies Vixie's rule (AND
  when either field starts with '*', else OR) and reads N/step as N-7/step.
- Cronos ANDs the two day fields, refuses a step larger than the field, repeats range/step
  tasks in the fall-back hour and moves every gap run to the transition; cronctl follows the
  first-character '*' rule of Vixie for DST (README.md#daylight-saving-time).
- robfig/cron runs fixed-time jobs twice on fall-back, skips wall times that do not exist, and
  treats `*/n` as restricted for the day rule; cron-parser shifts gap runs by the gap's length,
  runs `*/20 3` once on fall-back, and refuses duplicates and '#' in lists.
- `H` takes its value from each library's own hash: cronctl's hash of the task name differs.

Counts at this commit (agree / expected differences / rejected syntax / once wrong, now
agreeing): 1,960 (1,683 without a verdict, 277 of syntax cronctl learnt) / 352 (127 rejected,
21 accepted, 204 answered differently) / 295 / 2. Before the day forms of #16 item 5 (`L-n`,
`nW`, `LW`, `L-nW`, `nL`, `a-L`) they were 1,684 / 306 (127 / 20 / 159) / 617 / 2: of the 324
cases of these forms (W/LW 132, L with an offset, range or step 131, nL 61), 277 now agree,
45 differ by the peer's own rule (LEARNT below: 42 by Cronos's AND of the day fields, one
Cronos DST case, two of croniter's) and 2 stay refused: a step after `L` or `LW` (`L/2`,
`LW/2`: cronsim ignores the step, croniter refuses it). One case that agreed before now
differs: cronsim refuses `MONL` (cronsim-0257), which Cronos and cronctl take. croniter's
`L5` / `W15` spellings (12) stay refused, `L5` with a hint to write `5L`.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from cronctl.schedule.explain import explain
from tests.schedule.peer_cases import (
    ACCEPTED,
    AGREE,
    DATA,
    DIFFERS,
    PEER_FILES,
    REJECTED,
    Outcome,
    load_cases,
    load_verdicts,
    run_case,
)

CASES_PER_FILE = {"cronsim": 304, "croniter": 444, "cronos": 1569, "robfig": 128, "cronparser": 164}
ONCE_WRONG = {"cronos-1544": "h16", "cronparser-0131": "h17"}


@dataclass(frozen=True)
class Rule:
    """A verdict reason (found by `key`, a part of it) and the outcomes cronctl must give:
    (kind, a pattern the rejection message must match, or None)."""

    key: str
    outcomes: tuple[tuple[str, str | None], ...]


# The peer means something else on purpose: how cronctl keeps disagreeing.
RULES = (
    Rule("peer wraps reversed ranges", ((REJECTED, r"is a reversed range"),)),
    Rule("H value is implementation-defined", ((DIFFERS, None),)),
    Rule("Cronos ANDs day-of-month and day-of-week", ((DIFFERS, None),)),
    Rule("Cronos calls an expression 'interval'", ((DIFFERS, None),)),
    Rule("Cronos compares parsed structures", ((DIFFERS, None),)),
    Rule("Cronos never skips a run", ((DIFFERS, None),)),
    Rule("Cronos rejects a step larger", ((ACCEPTED, None),)),
    Rule("Cronos's inclusive 'from'", ((DIFFERS, None),)),
    Rule("cron-parser (after Quartz) refuses '#'", ((ACCEPTED, None),)),
    Rule("cron-parser moves a fixed-time run", ((DIFFERS, None),)),
    Rule("cron-parser moves a wildcard job's runs", ((DIFFERS, None),)),
    Rule("cron-parser rejects duplicate values", ((ACCEPTED, None),)),
    Rule("cron-parser runs '*/20 3 * * *'", ((DIFFERS, None),)),
    Rule("croniter drops the '*'", ((DIFFERS, None),)),
    Rule("croniter intersects a DOW#n", ((DIFFERS, None),)),
    Rule("croniter maps day-of-week 7 to 0", ((DIFFERS, None),)),
    Rule("croniter reads an equal range a-a", ((DIFFERS, None),)),
    Rule("croniter refuses to mix a plain weekday", ((ACCEPTED, None),)),
    Rule("croniter's default day_or=True", ((DIFFERS, None),)),
    # croniter-0287 also has a year field, which cronctl refuses first.
    Rule("croniter's opt-in day_or=False", ((DIFFERS, None), (REJECTED, r"has 7 fields"))),
    Rule("croniter.is_valid() without strict=True", ((REJECTED, r"never fires"),)),
    Rule("robfig/cron clears the '*' bit", ((DIFFERS, None),)),
    Rule("robfig/cron runs a fixed-time job in both passes", ((DIFFERS, None),)),
    Rule("robfig/cron skips a wall time", ((DIFFERS, None),)),
    Rule("the peer's test pins a value its own comment calls wrong", ((DIFFERS, None),)),
)

# The peer's own rule, for cases that used a day form of #16 item 5 (`L-n`, `nW`, `LW`, `nL`)
# while cronctl refused it, or that agreed until cronctl learnt the forms. verdicts.json is the
# outside truth and stays as it was: this table gives such a case the rule of RULES it now
# follows, as a `peer-semantics` verdict would.
_CRONOS_ANDS = "Cronos ANDs day-of-month and day-of-week"
_CRONOS_AND_CASES = (*range(1015, 1019), *range(1024, 1062))
LEARNT = {
    # cronsim takes only numbers before L; Cronos (cronos-0699 'mOnL') and Quartz take names.
    "cronsim-0257": "cronsim refuses a weekday name before L",
    # croniter raises for 31W in February even with a restricted day-of-week; cronctl ORs the
    # two restricted fields (README.md#day-of-month-and-day-of-week): every Sunday of February.
    "croniter-0026": "croniter raises for a W day",
    # croniter moves 31W to the last day of a 30-day month; Cronos (cronos-0660, 1363) and
    # Quartz skip a month without day n, and so does cronctl.
    "croniter-0170": "croniter moves nW to the month's last day",
    "cronos-0982": "Cronos's inclusive 'from'",
    **{f"cronos-{n:04d}": _CRONOS_ANDS for n in _CRONOS_AND_CASES},
}
LEARNT_RULES = (
    Rule("cronsim refuses a weekday name before L", ((ACCEPTED, None),)),
    Rule("croniter raises for a W day", ((DIFFERS, None),)),
    Rule("croniter moves nW to the month's last day", ((DIFFERS, None),)),
)

# Syntax cronctl refuses today: the message that must say so.
SYNTAX = (
    Rule("seconds/year field", ((REJECTED, r"has [67] fields"),)),
    # Learnt (#16, item 5) but for a step after L or LW (cronsim ignores it, croniter refuses
    # it: cronctl refuses it too) and croniter's `L5` / `W15` spellings.
    Rule("W / LW (nearest weekday)", ((REJECTED, r"as whole list items"),)),
    Rule("L combined with an offset", ((REJECTED, r"as whole list items"),)),
    Rule("nL / Ln (last given weekday", ((REJECTED, r"the last such weekday is written"),)),
    Rule("Quartz '?' placeholder", ((REJECTED, r"Quartz syntax"),)),
    Rule("L / W extensions", ((REJECTED, r"is not valid; "),)),
    Rule("'#' combined with a range/list form", ((REJECTED, r"is written DOW#N"),)),
    Rule("non-Vixie macro", ((REJECTED, r"unknown macro"),)),
    Rule("inline TZ=/CRON_TZ= prefix", ((REJECTED, r"has \d+ fields"),)),
    Rule("fewer than 5 fields", ((REJECTED, r"has [0-4] fields"),)),
)


def _rule(reason: str, rules: tuple[Rule, ...]) -> Rule:
    found = [rule for rule in rules if rule.key in reason]
    assert len(found) == 1, f"a verdict reason needs exactly one rule here: {reason!r}"
    return found[0]


def _fits(outcome: Outcome, allowed: tuple[tuple[str, str | None], ...]) -> bool:
    return any(
        outcome.kind == kind and (pattern is None or re.search(pattern, outcome.detail))
        for kind, pattern in allowed
    )


def _verdict(case_id: str, verdicts: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """The case's verdict: its entry in verdicts.json, or LEARNT's rule for it."""
    if case_id in LEARNT:
        return {"class": "peer-semantics", "reason": LEARNT[case_id]}
    return verdicts.get(case_id)


def _problem(verdict: dict[str, str] | None, outcome: Outcome) -> str:
    """Why `outcome` breaks the case's verdict, or '' when it keeps it."""
    if verdict is None or verdict["class"] == "cronctl-wrong":
        return "" if outcome.kind == AGREE else f"must agree, but {outcome.kind}"
    if verdict["class"] == "syntax-cronctl-rejects":
        if outcome.kind == AGREE or _fits(outcome, _rule(verdict["reason"], SYNTAX).outcomes):
            return ""  # still refused for this syntax, or learnt and agreeing
        return f"{outcome.kind} (refused syntax, or once learnt it must agree)"
    assert verdict["class"] == "peer-semantics", verdict
    allowed = _rule(verdict["reason"], RULES + LEARNT_RULES).outcomes
    if _fits(outcome, allowed):
        return ""
    wanted = " or ".join(kind for kind, _ in allowed)
    return f"{outcome.kind}, but the peer's own rule ({verdict['reason'][:60]}...) wants {wanted}"


@functools.cache
def _answers(peer: str) -> tuple[tuple[dict[str, Any], Outcome], ...]:
    """Every case of a peer file with cronctl's answer, asked once for the tests below."""
    return tuple((case, run_case(case)) for case in load_cases(peer))


@pytest.mark.parametrize("peer", PEER_FILES)
def test_h18_peer_cases_agree_or_differ_as_decided(peer: str) -> None:
    """One test a peer file; a failure lists every case that breaks its verdict."""
    verdicts = load_verdicts()
    broken = []
    for case, outcome in _answers(peer):
        problem = _problem(_verdict(case["id"], verdicts), outcome)
        if problem:
            broken.append(
                f"{case['id']} {case['expr']!r} ({case['kind']}): {problem}; {outcome.detail}"
            )
    assert not broken, f"{len(broken)} {peer} cases break their verdict:\n" + "\n".join(broken)


@pytest.mark.parametrize(("case_id", "item"), sorted(ONCE_WRONG.items()))
def test_h18_the_cases_cronctl_got_wrong_now_agree(case_id: str, item: str) -> None:
    """cronos-1544 (past year 9999, h16) and cronparser-0131 (Apia 2011-12-30, h17)."""
    verdicts = load_verdicts()
    assert verdicts[case_id]["class"] == "cronctl-wrong"
    assert sorted(k for k, v in verdicts.items() if v["class"] == "cronctl-wrong") == sorted(
        ONCE_WRONG
    )
    (case,) = [c for peer in PEER_FILES for c in load_cases(peer) if c["id"] == case_id]
    assert run_case(case) == Outcome(AGREE), item


def test_h18_every_case_is_read_and_every_verdict_has_a_rule() -> None:
    """The copy holds the whole set, and each verdict's reason is one this module decides."""
    ids = Counter()
    kinds = Counter()
    for peer in PEER_FILES:
        cases = load_cases(peer)
        assert len(cases) == CASES_PER_FILE[peer]
        ids.update(case["id"] for case in cases)
        kinds.update(case["kind"] for case in cases)
    assert sum(ids.values()) == 2609 and max(ids.values()) == 1
    assert set(kinds) <= {
        "next",
        "prev",
        "range",
        "fires_at",
        "fields",
        "equiv",
        "valid",
        "invalid",
        "never",
    }
    verdicts = load_verdicts()
    assert set(verdicts) <= set(ids)
    assert set(LEARNT) <= set(ids)
    for reason in LEARNT.values():
        _rule(reason, RULES + LEARNT_RULES)
    for verdict in verdicts.values():
        if verdict["class"] == "peer-semantics":
            _rule(verdict["reason"], RULES)
        elif verdict["class"] == "syntax-cronctl-rejects":
            _rule(verdict["reason"], SYNTAX)
        else:
            assert verdict["class"] == "cronctl-wrong"


def test_h18_counts_by_verdict_and_answer() -> None:
    """The tally of the module docstring, by verdict class and cronctl's answer. It changes
    when cronctl learns a syntax (a rejected case then agrees): update the docstring too."""
    verdicts = load_verdicts()
    tally: Counter[tuple[str, str]] = Counter()
    for peer in PEER_FILES:
        for case, outcome in _answers(peer):
            verdict = _verdict(case["id"], verdicts)
            tally[verdict["class"] if verdict else "none", outcome.kind] += 1
    assert tally == {
        ("none", AGREE): 1683,
        ("cronctl-wrong", AGREE): 2,
        ("peer-semantics", REJECTED): 127,
        ("peer-semantics", ACCEPTED): 21,
        ("peer-semantics", DIFFERS): 204,
        ("syntax-cronctl-rejects", AGREE): 277,
        ("syntax-cronctl-rejects", REJECTED): 295,
    }


def _descriptor_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        (DATA / "cron-descriptor-describe.json").read_text("utf-8")
    )
    return cases


def test_h18_explain_describes_every_expression_cron_descriptor_describes() -> None:
    """cron-descriptor's 90 English sentences are its own wording, not schedule semantics: the
    check is that `explain` takes each expression without crashing and says something (a
    sentence and fire times), or refuses it as syntax cronctl does not take (SYNTAX's
    messages)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    refused, described = [], 0
    for case in _descriptor_cases():
        try:
            explained = explain(case["cronctl_expr"], "UTC", 3, start=start, name="peer-case")
        except ValueError as error:
            if not _fits(Outcome(REJECTED, str(error)), _syntax_messages()):
                refused.append(f"{case['cronctl_expr']!r}: {error}")
            continue
        assert explained.description.endswith("."), case
        assert len(explained.next) == 3, case
        described += 1
    assert not refused, "refused for a reason no syntax rule gives:\n" + "\n".join(refused)
    assert described == 64


def _syntax_messages() -> tuple[tuple[str, str | None], ...]:
    return tuple(outcome for rule in SYNTAX for outcome in rule.outcomes)
