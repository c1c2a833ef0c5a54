"""`LogKey.mac` is HMAC-SHA256 (RFC 2104): built from hashlib states, it must equal `hmac.new`."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from kanban_terminal.storage.log_key import KEYED_PREFIX, LogKey


def _key(secret: bytes) -> LogKey:
    return LogKey(secret=secret, keyed_after_id=0, created_at="2026-12-05T00:00:00.000Z", path=Path("k"))


@given(st.binary(max_size=200), st.binary(max_size=400))
@example(b"", b"")
@example(b"k" * 64, b"a block-sized key")  # used as it is
@example(b"k" * 65, b"a longer key")  # hashed first
@example(b"\x00" * 32, b"\x1f".join([b"0" * 64, b"2026-12-05T00:00:00.000000Z"]))
def test_a_keyed_row_hash_is_hmac_sha256_of_its_text(secret: bytes, message: bytes) -> None:
    key = _key(secret)
    expected = KEYED_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()
    assert key.mac(message) == expected
    assert key.mac(message) == expected  # the key's states are copied, never used up


def test_two_keys_never_share_their_states() -> None:
    one, two = _key(b"a" * 32), _key(b"b" * 32)
    assert one.mac(b"row") != two.mac(b"row")
    assert one.mac(b"row") == _key(b"a" * 32).mac(b"row")
