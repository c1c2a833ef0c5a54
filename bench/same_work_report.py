"""The three-way summary of bench/line_pc.py: `serve`, the same-work raw pipeline and the minimal.

samework / minimal is what storing `serve`'s rows costs over two bare rows (the floor of any code
that keeps them); serve / samework is what `serve`'s own code adds (bench/same_work.py).
"""

from __future__ import annotations

from typing import Any, Protocol


class _Figures(Protocol):
    ms: list[float]

    @property
    def cpu_us(self) -> float: ...

    @property
    def wakeups(self) -> float: ...

    @property
    def rate(self) -> float: ...

    def pct(self, q: float) -> float: ...

    @property
    def signals(self) -> int: ...

    @property
    def threads(self) -> dict[str, float] | None: ...


KINDS = ("serve", "samework", "minimal")
PAIRS = (("serve", "minimal"), ("samework", "minimal"), ("serve", "samework"))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _cells(f: dict[str, Any], figure: str) -> tuple[list[str], list[str]]:
    values = {k: _value(f[k], figure) for k in KINDS}
    return [f"{values[k]:,.1f}" if figure != "cpu" else f"{values[k]:,.0f}" for k in KINDS], [
        _ratio(values[a], values[b]) for a, b in PAIRS
    ]


def _value(f: _Figures, figure: str) -> float:
    if figure == "cpu":
        return f.cpu_us
    if figure == "wakeups":
        return f.wakeups
    if figure == "rate":
        return f.rate
    return f.pct(0.99)


def line(what: str, f: dict[str, Any], burst: bool) -> None:
    """One workload's three-way line (printed as each workload ends)."""
    parts = []
    for figure, unit in (
        ("cpu", "us"),
        ("wakeups", ""),
        ("rate" if burst else "p99", "/s" if burst else "ms"),
    ):
        cells, ratios = _cells(f, figure)
        parts.append(f"{figure} {' / '.join(cells)}{unit} ({', '.join(ratios)})")
    print(f"  {what:>6} serve / samework / minimal: " + "; ".join(parts), flush=True)


def table(results: dict[tuple[float, str], dict[str, Any]]) -> None:
    """The summary: per workload and figure, the three pipelines and the three ratios, same run."""
    head = ["workload (disk)", "figure", *KINDS, *(f"{a}/{b}" for a, b in PAIRS)]
    rows = []
    for (disk, what), f in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if not all(k in f for k in KINDS):
            continue
        where = f"{what} ({'this disk' if not disk else f'+{disk:g} ms/fsync'})"
        burst = what == "burst"
        for figure, label in (
            ("cpu", "CPU/signal, us"), ("wakeups", "wake-ups/signal"),
            ("rate" if burst else "p99", "ingest, signals/s" if burst else f"p99, ms ({len(f['serve'].ms)})"),
        ):  # fmt: skip
            cells, ratios = _cells(f, figure)
            rows.append([where, label, *cells, *ratios])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print("where the floor is (issue 19): serve, the same-work raw pipeline and the minimal, same run")
    for r in [head, ["-" * w for w in widths], *rows]:
        print(
            "  "
            + "  ".join(
                str(c).rjust(w) if i > 1 else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def threads(what: str, f: _Figures) -> None:
    """`serve`'s CPU a signal by thread (`--threads`), busiest first."""
    if f.threads:
        busy = sorted(f.threads.items(), key=lambda kv: -kv[1])
        cells = ", ".join(f"{name} {cpu / f.signals * 1e6:,.0f}" for name, cpu in busy if cpu > 0)
        print(f"  {what:>6} serve CPU/signal by thread, us: {cells}", flush=True)
