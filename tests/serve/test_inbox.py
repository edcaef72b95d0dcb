"""What other threads hand the loop: each request wakes it; a second stop hurries."""

from __future__ import annotations

from cronctl.records import Trigger
from cronctl.serve.inbox import Inbox
from cronctl.serve.starts import run_request
from cronctl.serve.workers import Completion, Handle
from tests.serve.fakes import task


def test_requests_wake_the_loop_and_are_taken_once():
    inbox = Inbox()
    inbox.request_reload()
    assert inbox.wake.is_set()
    inbox.wake.clear()
    inbox.request_report()
    assert inbox.wake.is_set()
    assert inbox.take_reload() and not inbox.take_reload()
    assert inbox.take_report() and not inbox.take_report()


def test_a_second_stop_request_hurries():
    inbox = Inbox()
    inbox.request_stop()
    assert inbox.stop_requested and not inbox.hurry and inbox.wake.is_set()
    inbox.request_stop()
    assert inbox.hurry


def test_completions_queue_in_order():
    inbox = Inbox()
    handles = [Handle(run_request(task("t"), Trigger.SCHEDULE)) for _ in range(2)]
    for handle in handles:
        inbox.done(Completion(handle, None))
    assert inbox.wake.is_set()
    assert [c.handle for c in inbox.completions] == handles
