"""The schedulers bench_peers.py compares, each in its own process, behind one interface.

* cronctl: the installed `cronctl serve` (bench_serve.Serve: a scratch CRONCTL_HOME, real
  SQLite history, READY=1 on a notify socket, drained as systemd does);
* APScheduler 3.x: a BlockingScheduler with its default thread pool executor, each job
  `subprocess.run(command, shell=True)`, cron triggers, `misfire_grace_time` raised and
  `coalesce` off so that no slot is dropped; run as `python peers_workloads.py apscheduler SPEC`;
* the floor: a Python loop that sleeps until each instant and spawns the due commands one after
  the other with `subprocess.Popen` (no history); `python peers_workloads.py floor SPEC`;
* Debian cron: `/usr/sbin/cron -f` with the jobs in a file of /etc/cron.d of our own (removed
  on stop); minute granularity only.

Every job runs the same command through `/bin/sh -c`, as cronctl does: the stamp program (a
few lines of C compiled at the start: CLOCK_REALTIME appended with O_APPEND to a file, with
the job's name), so lateness means the same for all: "the job's process exists and runs".
Without gcc the command is `true`, and the stamp is the scheduler's own: the pre-spawn time
for APScheduler and the floor, history's `started_at` for cronctl.

A job is (name, period): period 1, 10 or 60 seconds (due at each multiple of it, UTC), or 0
for a task never due during a benchmark (yearly, on 1 January).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from bench_hotpath import drain_notify, status_kb  # noqa: E402
from bench_serve import TICKS, Serve, task_block  # noqa: E402

Job = tuple[str, int]  # (name, period in seconds; 0: never due)

STAMP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (argc < 3) return 2;
    char line[256];
    int n = snprintf(line, sizeof line, "%s %lld.%09ld\n", argv[2], (long long)now.tv_sec,
                     now.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return 1;
    if (write(fd, line, n) != n) return 1;
    return close(fd);
}
"""


def compile_stamp(scratch: Path) -> Path | None:
    """The stamp program, or None when gcc is absent or fails."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None
    source, binary = scratch / "stamp.c", scratch / "stamp"
    source.write_text(STAMP_C)
    built = subprocess.run([gcc, "-O2", "-o", str(binary), str(source)], capture_output=True)
    return binary if built.returncode == 0 else None


def job_command(stamp: Path | None, stamps: Path, name: str) -> str:
    return f"{stamp} {stamps} {name}" if stamp else "true"


def read_stamps(path: Path) -> list[tuple[str, float]]:
    found = []
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, when = line.partition(" ")
            if when:
                found.append((name, float(when)))
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, children excluded


def rss_mb(pid: int) -> float:
    return status_kb(pid, "VmRSS") / 1024


# ------------------------------------------------------------------------------ the peers


class Peer:
    """A scheduler running `jobs` in its own process; `pid`, `stamps()`, `stop()`."""

    label = ""
    pid = 0

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from the start to when it can fire."""
        raise NotImplementedError

    def stamps(self) -> list[tuple[str, float]]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def cpu(self) -> float:
        """The scheduler's CPU seconds so far (utime + stime, children excluded)."""
        return cpu_seconds(self.pid)


def cronctl_schedule(index: int, period: int) -> str:
    if period == 0:
        return f"{index % 60} {(index // 60) % 24} 1 1 *"
    return "* * * * *" if period == 60 else f"@every {period}s"


def letters(number: int) -> str:
    """A short distinct task name for each number: a, b, ..., z, aa, ab, ... (bijective base 26)."""
    name = ""
    number += 1
    while number:
        number, digit = divmod(number - 1, 26)
        name = chr(ord("a") + digit) + name
    return name


def compact_idle_tasks(count: int) -> str:
    """`count` tasks never due, about 41 bytes each: 100,000 of them fit in the 4 MiB that
    cronctl reads of a task file (cronctl/taskfile/reading.py), which the usual table per task
    (bench_serve.task_block, 75 bytes and more) does not."""
    lines = ["[tasks]"]
    lines += [f'{letters(i)}={{schedule="@yearly",command="true"}}' for i in range(count)]
    return "\n".join(lines) + "\n"


class CronctlPeer(Peer):
    label = "cronctl"

    def __init__(
        self,
        jobs: list[Job],
        stamp: Path | None,
        scratch: Path,
        body: str | None = None,
        source: Path | None = None,
    ) -> None:
        """`source`: a cronctl source tree serve imports instead of the installed one (on
        PYTHONPATH: bench_peers' `--base`, a `git archive` of the commit to compare with)."""
        self.stamp_file = scratch / f"cronctl-{time.monotonic_ns()}.stamps"
        self.with_stamp = stamp is not None
        if body is None:
            body = "".join(
                task_block(
                    name, cronctl_schedule(i, period), job_command(stamp, self.stamp_file, name)
                )
                for i, (name, period) in enumerate(jobs)
            )
        self.serve = Serve(body, extra_env={"PYTHONPATH": str(source)} if source else None)
        self.pid = self.serve.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from the exec of serve to READY=1; an error with serve's last words when it
        exits first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready = self.serve.wait_ready(1.0)
                break
            except TimeoutError:
                code = self.serve.proc.poll()
                if code is not None or time.monotonic() > deadline:
                    log = (self.serve.home / "serve.log").read_text(errors="replace").strip()
                    said = log.splitlines()[-2:] if log else ["(nothing)"]
                    raise RuntimeError(
                        f"cronctl serve not ready (exit {code}): {' / '.join(said)}"
                    ) from None
        drain_notify(self.serve)  # unread, serve's 11th notify datagram blocks its loop
        return ready

    def stamps(self) -> list[tuple[str, float]]:
        if self.with_stamp:
            return read_stamps(self.stamp_file)
        return [
            (r.task, r.started_at.timestamp())
            for r in self.serve.runs()
            if r.started_at is not None and r.trigger == "schedule"
        ]

    def stop(self) -> None:
        self.serve.stop()


class ScriptPeer(Peer):
    """APScheduler or the floor: this file run as a script, READY on its stdout."""

    def __init__(self, kind: str, jobs: list[Job], stamp: Path | None, scratch: Path) -> None:
        self.label = kind
        self.stamp_file = scratch / f"{kind}-{time.monotonic_ns()}.stamps"
        spec = {
            "stamps": str(self.stamp_file),
            "pre_spawn_stamp": stamp is None,
            "jobs": [
                [name, period, job_command(stamp, self.stamp_file, name)] for name, period in jobs
            ],
        }
        self.spec = scratch / f"{kind}-{time.monotonic_ns()}.json"
        self.spec.write_text(json.dumps(spec))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), kind, str(self.spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=Path.home(),  # where cronctl serve runs too (bench_serve.Serve)
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> float:
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if line.strip() != "READY":
            raise RuntimeError(f"{self.label} did not start (exit {self.proc.poll()})")
        return time.perf_counter() - self.started

    def stamps(self) -> list[tuple[str, float]]:
        return read_stamps(self.stamp_file)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


CRON = Path("/usr/sbin/cron")


def cron_running() -> bool:
    """Another cron daemon on the machine (ours would refuse to start, or run jobs twice)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("cron", "crond"):
                return True
        except OSError:
            continue
    return False


class CronPeer(Peer):
    """Debian cron in the foreground with our jobs in /etc/cron.d/cronctl-bench-PID (run-parts
    names: no dot), which stop() removes. Only jobs due each minute or never."""

    label = "Debian cron"

    def __init__(self, jobs: list[Job], stamp: Path | None, scratch: Path) -> None:
        if any(period not in (0, 60) for _, period in jobs):
            raise ValueError("cron fires at most once a minute")
        self.stamp_file = scratch / f"cron-{time.monotonic_ns()}.stamps"
        self.table = Path(f"/etc/cron.d/cronctl-bench-{os.getpid()}")
        lines = ["SHELL=/bin/sh", "PATH=/usr/bin:/bin"]
        for index, (name, period) in enumerate(jobs):
            when = "* * * * *" if period == 60 else f"{index % 60} {(index // 60) % 24} 1 1 *"
            lines.append(f"{when} root {job_command(stamp, self.stamp_file, name)}")
        self.table.write_text("\n".join(lines) + "\n")
        self.table.chmod(0o644)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(CRON), "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> float:
        time.sleep(1.0)  # cron reads its tables at start; it has no readiness signal
        if self.proc.poll() is not None:
            raise RuntimeError(f"cron exited at start ({self.proc.returncode})")
        return time.perf_counter() - self.started

    def stamps(self) -> list[tuple[str, float]]:
        return read_stamps(self.stamp_file)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.table.unlink(missing_ok=True)


def cron_available() -> str | None:
    """None when Debian cron can run here, else why not."""
    if not CRON.exists():
        return "not installed (apt-get install cron)"
    if os.geteuid() != 0:
        return "needs root (it reads /etc/cron.d)"
    if cron_running():
        return "a cron daemon is already running on this machine"
    return None


def start_peer(kind: str, jobs: list[Job], stamp: Path | None, scratch: Path) -> Peer:
    if kind == "cronctl":
        return CronctlPeer(jobs, stamp, scratch)
    if kind == "cron":
        return CronPeer(jobs, stamp, scratch)
    return ScriptPeer(kind, jobs, stamp, scratch)


# ----------------------------------------------------------- the child processes' side


def _stamper(spec: dict) -> object:
    """The pre-spawn stamp (no gcc): the scheduler's own time just before it spawns."""
    if not spec["pre_spawn_stamp"]:
        return None
    fd = os.open(spec["stamps"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    return lambda name: os.write(fd, f"{name} {time.time():.9f}\n".encode())


def run_apscheduler(spec: dict) -> None:
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    stamp = _stamper(spec)

    def job(name: str, command: str) -> None:
        if stamp is not None:
            stamp(name)
        subprocess.run(command, shell=True)

    scheduler = BlockingScheduler(
        timezone="UTC", job_defaults={"misfire_grace_time": 3600, "coalesce": False}
    )
    for index, (name, period, command) in enumerate(spec["jobs"]):
        if period == 0:
            trigger = CronTrigger(
                month=1, day=1, hour=(index // 60) % 24, minute=index % 60, timezone="UTC"
            )
        elif period == 60:
            trigger = CronTrigger(second=0, timezone="UTC")
        else:
            trigger = CronTrigger(second=f"*/{period}", timezone="UTC")
        scheduler.add_job(job, trigger, args=(name, command), id=name)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    threading.Timer(0, lambda: print("READY", flush=True)).start()
    scheduler.start()


def run_floor(spec: dict) -> None:
    """Sleep until each instant, spawn what is due one after the other; reap in between."""
    import heapq

    stamp = _stamper(spec)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    now = time.time()
    due = [
        ((int(now) // period + 1) * period, name, period, command)
        for name, period, command in spec["jobs"]
        if period
    ]
    heapq.heapify(due)
    children: list[subprocess.Popen[bytes]] = []
    print("READY", flush=True)
    while due:
        instant = due[0][0]
        time.sleep(max(0.0, instant - time.time()))
        while due and due[0][0] == instant:
            _, name, period, command = heapq.heappop(due)
            if stamp is not None:
                stamp(name)
            children.append(subprocess.Popen(command, shell=True))
            heapq.heappush(due, (instant + period, name, period, command))
        children = [child for child in children if child.poll() is None]


if __name__ == "__main__":
    kind, spec_path = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(spec_path).read_text())
    if kind == "apscheduler":
        run_apscheduler(spec)
    elif kind == "floor":
        run_floor(spec)
    else:
        raise SystemExit(f"unknown peer {kind}")
