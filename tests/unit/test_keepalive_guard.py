"""The keepalive guard's two rules (runtime/keepalive_guard.py), on their own: the broker's slack
decides whether paho's thread may commit a group, and a slow group sends the next ones to the
worker thread until one that wrote something is fast again. The end-to-end behaviour on a real
broker is in tests/integration/test_inbound_keepalive.py."""

from __future__ import annotations

from kanban_terminal.runtime.keepalive_guard import KeepaliveGuard


def guard_with(slack: list[float]) -> KeepaliveGuard:
    return KeepaliveGuard(10, lambda: slack[0])


def test_paho_commits_only_with_a_keepalive_of_slack_left() -> None:
    slack = [15.0]  # a PUBACK just went out: 1.5 x keepalive left
    guard = guard_with(slack)
    assert guard.min_slack_s == 10 and guard.slow_s == 1.0
    assert guard.inline_ok()
    slack[0] = 10.0  # half a keepalive of silence from the terminal: still one keepalive left
    assert guard.inline_ok()
    slack[0] = 9.9
    assert not guard.inline_ok()


def test_a_slow_group_sends_the_next_to_the_worker_until_a_fast_one_wrote() -> None:
    guard = guard_with([15.0])
    guard.group_took(0.5)
    assert guard.inline_ok() and guard.slow_groups == 0
    guard.group_took(1.2)  # over a tenth of the keepalive
    assert not guard.inline_ok() and guard.slow_groups == 1
    guard.group_took(3.0)  # the worker's: still slow
    assert not guard.inline_ok() and guard.slow_groups == 2
    guard.group_took(0.01, wrote=False)  # redeliveries only: fast, but no word on the disk
    assert not guard.inline_ok()
    guard.group_took(0.05, wrote=True)
    assert guard.inline_ok() and not guard.slow


def test_a_slow_group_counts_even_if_it_wrote_nothing() -> None:
    guard = guard_with([15.0])
    guard.group_took(2.0, wrote=False)  # it held its thread all the same
    assert not guard.inline_ok()
