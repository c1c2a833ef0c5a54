"""The relay's request message, built from the raw outbox row, is byte for byte the documented one
(`services.outbox.request_payload`), for rows read from a real file and for any row the outbox can
hold (hypothesis)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.outbox import request_payload
from kanban_terminal.services.request_message import RequestMessages, wire_time
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.outbox import OUTBOX_COLUMNS, OutboxRow
from kanban_terminal.storage.types import to_text
from tests.support.mqtt_lines import make_config


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminal]:
    tmp = tmp_path_factory.mktemp("request-message")
    config, _ = make_config(tmp, loops=2, cards=30, sensors=0)
    clock = lambda: datetime(2026, 11, 23, 10, 0, 0, 987654, tzinfo=UTC)  # noqa: E731
    t = Terminal.open(config, tmp / "data", clock=clock)
    for card in ("C00001", "C00002", "C00031"):
        assert record_scan(t, card, source="test", intent=Intent.EMPTY).accepted
    yield t
    t.close()


def stored_rows(terminal: Terminal) -> list[tuple[object, ...]]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return list(con.execute(f"SELECT {OUTBOX_COLUMNS} FROM replenishment_request ORDER BY rowid"))
    finally:
        con.close()


def test_the_stored_rows_give_the_documented_bytes(terminal: Terminal) -> None:
    rows = stored_rows(terminal)
    assert len(rows) == 3
    messages = RequestMessages(terminal)
    for r in rows:
        assert messages.payload(r) == request_payload(terminal, OutboxRow.from_sql(r))
    assert b'"raised_at":"2026-11-23T10:00:00.987Z"' in messages.payload(rows[0])


def test_a_red_cards_request_is_expedited(terminal: Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
    r = stored_rows(terminal)[0]
    monkeypatch.setitem(terminal.reserve_cards, str(r[3]), str(r[1]))
    made = RequestMessages(terminal).payload(r)
    assert made == request_payload(terminal, OutboxRow.from_sql(r))
    assert made.endswith(b',"expedite":true}')


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
# Years before 1000 are stored unpadded and `from_text` cannot read them back: no row has one.
times = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(
        texts, texts, st.integers(0, 2**40), texts, texts, st.integers(-5, 10**6), texts, texts, texts,
        times, times, st.integers(0, 10**6),
    )
)  # fmt: skip
def test_any_row_gives_the_documented_bytes(terminal: Terminal, values: tuple[object, ...]) -> None:
    r = list(values)
    r[9], r[10] = to_text(r[9]), to_text(r[10])  # type: ignore[arg-type]
    assert RequestMessages(terminal).payload(tuple(r)) == request_payload(terminal, OutboxRow.from_sql(r))


@pytest.mark.parametrize(
    "at",
    [datetime(2026, 12, 5, 19, 0, 0, 999999, tzinfo=UTC), datetime(1000, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
     datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=1)],
)  # fmt: skip
def test_wire_time_cuts_to_milliseconds_as_utc_text_does(at: datetime) -> None:
    assert wire_time(to_text(at)) == at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
