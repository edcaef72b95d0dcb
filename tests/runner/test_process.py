"""run_process with real processes: exits, signals, timeouts, process groups, output, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cronctl.clock import SYSTEM_CLOCK
from cronctl.runner import pipes as pipes_mod
from cronctl.runner.capture import drop_marker
from cronctl.runner.groups import group_alive
from cronctl.runner.outcome import NOTE_LEFTOVER, NOTE_STOPPED_EARLY
from cronctl.runner.process import ProcessOutcome, run_process, stop_process_group
from tests.support import pid_alive

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

REPO = Path(__file__).resolve().parents[2]
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
PY = sys.executable
LINUX = sys.platform.startswith("linux")


def run(command: str, **kwargs: object) -> ProcessOutcome:
    kwargs.setdefault("cwd", None)
    kwargs.setdefault("env", ENV)
    return run_process(command, **kwargs)  # type: ignore[arg-type]


def live_members(pgid: int) -> list[int]:
    """Members of the group that are not zombies (scanned here, independently of the runner)."""
    if not LINUX:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]  # cannot tell zombies apart; the final killpg check decides
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                found.append(int(name))
    return found


# Groups whose last members must vanish for os.killpg(pgid, 0) to fail. Orphaned members are
# reaped by PID 1, which in some containers takes about two seconds; rather than wait that long
# in every test, each test checks for live members at once and the module checks the rest at the
# end, in one wait.
_GROUPS_TO_VANISH: list[tuple[str, int]] = []


def assert_group_gone(pgid: int) -> None:
    assert not live_members(pgid), f"process group {pgid} still has live members"
    assert not group_alive(pgid)
    _GROUPS_TO_VANISH.append((os.environ.get("PYTEST_CURRENT_TEST", "?"), pgid))


@pytest.fixture(scope="module", autouse=True)
def groups_vanish() -> Iterator[None]:
    yield
    end = time.monotonic() + 8.0
    left = list(_GROUPS_TO_VANISH)
    while left and time.monotonic() < end:
        still = []
        for test, pgid in left:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                continue
            still.append((test, pgid))
        left = still
        if left:
            time.sleep(0.05)
    _GROUPS_TO_VANISH.clear()
    assert not left, f"process groups still present (os.killpg(pgid, 0) succeeds): {left}"


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(params=["pidfd", "poll"] if LINUX else ["poll"])
def exit_detection(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with pidfd exit detection (Linux) and with the polling fallback (macOS)."""
    if request.param == "poll":
        monkeypatch.setattr(pipes_mod, "_HAS_PIDFD", False)
    return request.param


# --------------------------------------------------------------------------- exits


@pytest.mark.parametrize(
    ("command", "code"),
    [("true", 0), ("exit 3", 3), ("no_such_command_cronctl_test", 127)],
)
def test_exit_codes(command: str, code: int, exit_detection: str) -> None:
    before = datetime.now(UTC)
    out = run(command)
    assert out.exit_code == code
    assert out.signal is None
    assert not out.timed_out and not out.stopped
    assert out.start_error is None and out.note is None
    assert isinstance(out.pid, int) and out.pid > 0
    assert out.started_at.tzinfo is not None
    assert before <= out.started_at <= out.finished_at
    assert 0 <= out.duration < 5
    if code == 127:
        assert b"not found" in out.stderr.data


def test_killed_by_a_signal_from_outside() -> None:
    def kill_soon(pid: int) -> None:
        threading.Timer(0.1, os.kill, (pid, signal.SIGKILL)).start()

    out = run("exec sleep 20", on_start=kill_soon)
    assert out.signal == signal.SIGKILL
    assert out.exit_code is None
    assert not out.timed_out and not out.stopped
    assert out.duration < 5


def test_signal_terminated_shell_reports_the_signal() -> None:
    out = run("kill -TERM $$")
    assert out.signal == signal.SIGTERM and out.exit_code is None


# --------------------------------------------------------------------------- timeouts and stop


def test_timeout_kills_a_group_that_ignores_sigterm(exit_detection: str) -> None:
    # The shell and its background child both ignore SIGTERM (SIG_IGN is inherited).
    job = "trap '' TERM; sleep 30 & echo $!; wait; echo unreachable"
    t0 = time.monotonic()
    out = run(job, timeout=0.5, kill_grace=0.4)
    elapsed = time.monotonic() - t0
    assert out.timed_out and not out.stopped
    assert out.signal == signal.SIGKILL and out.exit_code is None
    assert 0.85 <= out.duration and elapsed < 5
    assert b"unreachable" not in out.stdout.data
    sleeper = int(out.stdout.data.split()[0])
    assert out.pid is not None
    assert not pid_alive(sleeper)
    assert_group_gone(out.pid)


def test_timeout_that_sigterm_ends_does_not_wait_for_the_grace() -> None:
    out = run("sleep 30", timeout=0.3, kill_grace=30)
    assert out.timed_out
    assert out.signal == signal.SIGTERM
    assert out.duration < 5
    assert out.pid is not None
    assert_group_gone(out.pid)


def test_timeout_kills_a_daemonised_grandchild(exit_detection: str) -> None:
    # Double fork: the subshell backgrounds the sleeper and exits, so the sleeper is orphaned
    # (re-parented) but stays in the job's process group; it ignores SIGTERM and holds no pipe.
    job = "(trap '' TERM; sleep 30 </dev/null >/dev/null 2>&1 & echo $!); echo ready; sleep 30"
    out = run(job, timeout=0.5, kill_grace=0.4)
    assert out.timed_out
    daemon = int(out.stdout.data.split()[0])
    assert out.pid is not None
    assert not pid_alive(daemon)
    assert_group_gone(out.pid)


def test_stop_with_a_python_child_that_ignores_sigterm() -> None:
    # The grandchild sets SIG_IGN itself; the stop comes once it says so (no race with start-up).
    child = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pid = os.fork()\n"
        "if pid == 0: time.sleep(30)\n"
        "print('ready', os.getpid(), pid, flush=True); time.sleep(30)"
    )
    stop = threading.Event()

    def watch(stream: str, chunk: bytes) -> None:
        if b"ready" in chunk:
            stop.set()

    out = run(f'{PY} -c "{child}"', stop=stop, on_output=watch, kill_grace=0.3)
    assert out.stopped and not out.timed_out
    # sh may exec python (then SIGKILL ends the job) or fork it (then SIGTERM ends sh).
    assert out.signal in (signal.SIGTERM, signal.SIGKILL)
    _ready, python_pid, forked = out.stdout.data.split()
    assert out.pid is not None
    assert not pid_alive(int(python_pid)) and not pid_alive(int(forked))
    assert_group_gone(out.pid)
    assert out.duration < 8


def test_stop_event(exit_detection: str) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    out = run("echo started; sleep 30", stop=stop, kill_grace=5)
    assert out.stopped and not out.timed_out
    assert out.signal == signal.SIGTERM
    assert out.stdout.data == b"started\n"
    assert out.duration < 3
    assert out.pid is not None
    assert_group_gone(out.pid)


def test_stop_set_before_start_starts_nothing() -> None:
    stop = threading.Event()
    stop.set()
    started: list[int] = []
    out = run("echo never", stop=stop, on_start=started.append)
    assert out.stopped and out.pid is None and out.exit_code is None
    assert out.note == NOTE_STOPPED_EARLY
    assert started == []


def test_stop_process_group_helper() -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 30 & sleep 30 & wait"],
        process_group=0,
        stdin=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.1)
        t0 = time.monotonic()
        assert stop_process_group(proc.pid, 0.2, clock=SYSTEM_CLOCK)
        assert time.monotonic() - t0 < 3
        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert_group_gone(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        run("true", kill_grace=-1)
    with pytest.raises(ValueError):
        run("true", head_bytes=-1)


def test_timeout_zero_means_no_limit() -> None:
    out = run("sleep 0.2; echo done", timeout=0)
    assert out.exit_code == 0 and not out.timed_out and out.stdout.data == b"done\n"


# --------------------------------------------------------------------------- background holders


def test_background_child_holding_the_pipe_does_not_hang_the_run(exit_detection: str) -> None:
    t0 = time.monotonic()
    out = run("sleep 30 & echo $!; echo started; exit 4")
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5
    assert out.exit_code == 4 and out.signal is None
    assert not out.timed_out
    assert out.note == NOTE_LEFTOVER
    pid_text, started = out.stdout.data.split()
    assert started == b"started"
    assert not pid_alive(int(pid_text))
    assert out.pid is not None
    assert_group_gone(out.pid)


def test_background_child_holding_only_stderr() -> None:
    t0 = time.monotonic()
    out = run("sleep 30 >/dev/null & echo done")
    assert time.monotonic() - t0 < 2.5
    assert out.exit_code == 0 and out.note == NOTE_LEFTOVER
    assert out.pid is not None
    assert_group_gone(out.pid)


def test_background_child_with_its_own_output_is_left_alone() -> None:
    # Like cron: a job may start a daemon that does not hold our pipes; the run ends at once.
    out = run("sleep 30 </dev/null >/dev/null 2>&1 & echo $!")
    daemon = int(out.stdout.data)
    try:
        assert out.exit_code == 0 and out.note is None
        assert out.duration < 0.4
        assert pid_alive(daemon)
    finally:
        os.kill(daemon, signal.SIGKILL)


def test_pipe_held_outside_the_group_is_closed_with_a_note() -> None:
    if not Path("/usr/bin/setsid").exists() and not Path("/bin/setsid").exists():
        pytest.skip("no setsid")
    out = run("setsid sleep 30 & echo $!")
    holder = int(out.stdout.data)
    try:
        assert out.exit_code == 0
        assert out.note is not None and "outside" in out.note
        assert out.duration < 2.5
    finally:
        try:
            os.kill(holder, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------- output


def test_stdout_and_stderr_are_separate() -> None:
    out = run("echo to-out; echo to-err >&2; printf more-out")
    assert out.stdout.data == b"to-out\nmore-out"
    assert out.stderr.data == b"to-err\n"
    assert out.stdout.total_bytes == 15 and out.stdout.dropped_bytes == 0


def test_raw_bytes_are_kept_and_safe_text_escapes_them() -> None:
    from cronctl.records import safe_text

    out = run(r"printf 'bad \377\376 \033[31mred\033[0m nul\000 \302\233x\n'")
    raw = b"bad \xff\xfe \x1b[31mred\x1b[0m nul\x00 \xc2\x9bx\n"
    assert out.stdout.data == raw
    text = safe_text(out.stdout.data)
    assert "\x1b" not in text and "\x00" not in text and "\x9b" not in text
    assert text == "bad \\xff\\xfe \\x1b[31mred\\x1b[0m nul\\x00 \\x9bx\n"


def test_stdin_is_dev_null() -> None:
    out = run("cat; read line; echo read=$?", timeout=10)
    assert out.exit_code == 0
    assert out.stdout.data == b"read=1\n"
    assert out.duration < 5


def test_on_output_gets_every_chunk_even_when_capture_truncates() -> None:
    got: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    out = run(
        "head -c 300000 /dev/zero | tr '\\0' a; echo oops >&2",
        on_output=lambda name, chunk: got[name].append(chunk),
    )
    assert out.exit_code == 0
    assert b"".join(got["stdout"]) == b"a" * 300000
    assert b"".join(got["stderr"]) == b"oops\n"
    assert out.stdout.total_bytes == 300000
    assert out.stdout.dropped_bytes == 300000 - 2 * 65536
    assert out.stdout.data == b"a" * 65536 + drop_marker(300000 - 131072) + b"a" * 65536


def test_custom_capture_sizes() -> None:
    out = run("printf 0123456789", head_bytes=2, tail_bytes=3)
    assert out.stdout.data == b"01" + drop_marker(5) + b"789"


def test_large_output_keeps_memory_bounded() -> None:
    # The capture runs in a fresh interpreter so this process's own history doesn't matter.
    script = textwrap.dedent(
        """
        import json, os
        from cronctl.runner.process import run_process

        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
            return 0

        base = hwm()
        job = "printf HEAD; head -c 199999992 /dev/zero; printf TAIL"
        out = run_process(job, cwd=None, env={"PATH": os.environ["PATH"]}, timeout=120)
        print(json.dumps({
            "growth": hwm() - base, "exit": out.exit_code, "total": out.stdout.total_bytes,
            "dropped": out.stdout.dropped_bytes, "len": len(out.stdout.data),
            "head": out.stdout.data[:4].decode(), "tail": out.stdout.data[-4:].decode(),
            "marker": out.stdout.data[65536:65536 + 40].decode(),
            "zeros": out.stdout.data[4:65536].count(0),
        }))
        """
    )
    if not LINUX:
        pytest.skip("VmHWM is Linux-only")
    import json

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([PY, "-c", script], capture_output=True, env=env, timeout=180, check=True)
    report = json.loads(res.stdout)
    assert report["exit"] == 0
    assert report["total"] == 200_000_000
    assert report["dropped"] == 200_000_000 - 131072
    marker = drop_marker(200_000_000 - 131072)
    assert report["len"] == 131072 + len(marker)
    assert report["head"] == "HEAD" and report["tail"] == "TAIL"
    assert report["marker"].startswith(marker.decode())
    assert report["zeros"] == 65532
    assert report["growth"] < 60 * 1024 * 1024, report


# --------------------------------------------------------------------------- start errors


def test_missing_working_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    out = run("true", cwd=str(missing))
    assert out.start_error == f"working folder {missing} does not exist"
    assert out.exit_code is None and out.pid is None and out.signal is None
    assert out.stdout.data == b"" and out.duration == 0


def test_working_folder_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    out = run("true", cwd=str(f))
    assert out.start_error == f"working folder {f} is not a folder"


def test_working_folder_is_used(tmp_path: Path) -> None:
    out = run("pwd", cwd=str(tmp_path))
    assert out.stdout.data.decode().strip() == str(tmp_path.resolve())


def test_environment_is_exactly_the_given_one() -> None:
    out = run('echo "$CRONCTL_X|${HOME-unset}"', env={**ENV, "CRONCTL_X": "yes"})
    assert out.stdout.data == b"yes|unset\n"


def test_missing_shell() -> None:
    out = run("true", shell="/nonexistent/sh")
    assert out.start_error == "shell /nonexistent/sh not found"
    assert out.exit_code is None and out.pid is None


def test_shell_that_is_not_executable(tmp_path: Path) -> None:
    shell = tmp_path / "sh"
    shell.write_text("#!/bin/sh\n")
    shell.chmod(0o644)
    out = run("true", shell=str(shell))
    assert out.start_error == f"shell {shell} is not executable"


def test_command_with_a_nul_byte_is_a_start_error() -> None:
    out = run("echo a\0b")
    assert out.start_error is not None and "null" in out.start_error
    assert out.exit_code is None


def test_too_many_open_files_is_a_start_error() -> None:
    script = textwrap.dedent(
        """
        import os, resource
        from cronctl.runner.process import run_process
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        out = run_process("true", cwd=None, env={})
        print(out.start_error)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([PY, "-c", script], capture_output=True, env=env, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert "EMFILE" in res.stdout.decode(), res.stdout


# --------------------------------------------------------------------------- hygiene


@pytest.mark.skipif(not LINUX, reason="counts /proc/self/fd")
def test_no_descriptor_leaks() -> None:
    before = open_fds()
    run("echo x; echo y >&2")
    run("sleep 30 & echo $!")
    run("trap '' TERM; sleep 5", timeout=0.2, kill_grace=0.2)
    run("true", cwd="/nonexistent")
    assert open_fds() == before


def test_callback_error_kills_the_job_and_propagates() -> None:
    pids: list[int] = []

    def boom(stream: str, chunk: bytes) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        run("echo hi; sleep 30", on_start=pids.append, on_output=boom)
    (pid,) = pids
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie
    assert_group_gone(pid)


def test_on_start_gets_the_pid() -> None:
    pids: list[int] = []
    out = run("echo $$", on_start=pids.append)
    assert pids == [out.pid]
    assert out.stdout.data == f"{out.pid}\n".encode()


def test_clock_is_used_for_times() -> None:
    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    class Clock:
        def now(self) -> datetime:
            return fixed

        def monotonic(self) -> float:
            return time.monotonic()

        def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
            return SYSTEM_CLOCK.sleep(seconds, wake)

    out = run("true", clock=Clock())
    assert out.started_at == fixed and out.finished_at == fixed


def test_concurrent_runs_do_not_mix() -> None:
    results: dict[int, ProcessOutcome] = {}

    def one(i: int) -> None:
        results[i] = run(f"echo {i}; echo e{i} >&2; exit {i % 7}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 24
    for i, out in results.items():
        assert out.exit_code == i % 7
        assert out.stdout.data == f"{i}\n".encode()
        assert out.stderr.data == f"e{i}\n".encode()
