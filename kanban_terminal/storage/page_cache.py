"""A small page cache for a read that walks a whole table once, so the pages it reads are not kept.

SQLite keeps the pages a connection read, up to `cache_size` (2,000 KiB by default), in memory that
stays with the connection for as long as it lives (a pooled one: the whole run). Two reads of a
ready `serve` walk the whole line: the catalog sync's card table (services/catalog.py) and the
runway's first pass over the bin-empty window (storage/runway_rows.py). On a 20,000-card line they
filled 1.25 and 2.0 MB of cache that the running terminal never reads again: 3.9 MB of SQLite's heap
at ready against 0.6 MB on a 40-card line (`sqlite3_memory_used()`, issue 19). Each page of such a
walk is read once and needed again only by chance, so a cache of a few pages serves it as well.

It changes no data and takes no lock. It must not be used around a read that visits the same pages
many times (a join's lookups): that one needs the cache it has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

WALK_CACHE_KIB = 256
"""The cache a whole-table walk gets: 64 pages of 4 KiB, enough for the b-trees' upper levels."""


@contextmanager
def walk_cache(sql: sqlite3.Connection, kib: int = WALK_CACHE_KIB) -> Iterator[None]:
    """Bound the connection's page cache to `kib` for the block, then give it back its size.

    Lowering the size frees the cached pages above it at once; while it is low, a page read past it
    takes the place of the least recently used one instead of a new allocation.
    """
    (size,) = sql.execute("PRAGMA cache_size").fetchone()
    sql.execute(f"PRAGMA cache_size = {-int(kib)}")
    try:
        yield
    finally:
        sql.execute(f"PRAGMA cache_size = {int(size)}")
