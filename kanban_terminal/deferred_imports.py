"""Standard-library packages that `serve`'s stack imports and a headless terminal never runs, loaded
at their first use instead of at start-up (issue 19: `serve`'s RSS when ready).

SQLAlchemy imports `asyncio` (its async extension) and `importlib.metadata` (dialect entry points)
at `import sqlalchemy`; pydantic imports `importlib.metadata` (its plugins, a version check); paho
imports `urllib.request` (proxies from the environment, read only when PySocks is installed). Those
bring `email`, `http.client`, `zipfile`, `subprocess`, `concurrent.futures`... 74 modules in all,
and none of them runs in a `serve` on SQLite with paho. Not importing them: a ready 40-card `serve`
66.2 -> 62.2 MB (in-process probe, 3 starts each; asyncio alone -1.6, `urllib.request` -0.5,
`importlib.metadata` -0.8, `email` only goes when both of the last two do).

`defer_unused_stdlib()` puts a stand-in in `sys.modules` for each of them that is not imported yet:
a module object with the real module's spec, file and path, so `import asyncio` binds it and
`inspect.getmodule` can read it. The first read of an attribute the stand-in does not hold runs
the real module's code into that same object (as `importlib.util.LazyLoader` does), so whoever
bound it sees the whole module, the same object, from then on. Nothing changes but when the code
runs. `LazyLoader` itself cannot be used on 3.11: it loads on any attribute read, and every
`import` statement reads `__spec__` (tried on branch `lightserve`: everything loaded at once).

The few names that third parties read while they are being imported are set beforehand, so
reading them does not load the package: `asyncio.iscoroutine` (`sqlalchemy.util.concurrency`),
the real function from the small `asyncio.coroutines`; `importlib.metadata.version` and
`entry_points` (pydantic), forwarders that load the package when called. pydantic calls
`entry_points` at its first model build to look for plugins, unless `PYDANTIC_DISABLE_PLUGINS`
says not to: the terminal installs no pydantic plugin, so this sets it to `__all__` when the
environment does not set it already (set it to an empty value to let `serve` load plugins).

Installed only where `serve` or the peer starts (`python -m kanban_terminal.runtime`, the CLI's
`serve` and `upstream` verbs), before pydantic and SQLAlchemy are imported.
tests/integration/test_serve_imports.py checks that a ready `serve` has not loaded them;
tests/unit/test_deferred_imports.py that a stand-in behaves as the module.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

DEFERRED = ("asyncio", "importlib.metadata", "urllib.request")
"""The packages a `serve` process loads only when something uses them."""

_LOCK = threading.RLock()
_LOCKS = {name: threading.RLock() for name in DEFERRED}
"""One lock a package, not one for all: a package's run imports other modules, and a thread that is
importing one of those must not wait on another package's run (a wait importlib cannot see)."""
_loading: set[str] = set()


class DeferredModule(ModuleType):
    """A package not run yet: reading a name it does not hold runs the package into it."""

    def __getattr__(self, attr: str) -> Any:
        _load(self)
        return getattr(self, attr)


def _load(module: ModuleType) -> None:
    """Run a stand-in's package into it, once, whichever thread gets there first."""
    name = module.__name__
    with _LOCKS.get(name, _LOCK):
        if type(module) is not DeferredModule:
            return
        if name in _loading:  # its own code, while it runs, asks for a name not set yet
            raise AttributeError(f"partially initialized module {name!r}")
        _loading.add(name)
        try:
            spec = module.__spec__
            assert spec is not None and spec.loader is not None  # set in _stand_in
            spec.loader.exec_module(module)
            module.__class__ = ModuleType  # type: ignore[assignment]  # a plain module from now on
        finally:
            _loading.discard(name)


def _stand_in(name: str) -> DeferredModule | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)  # __spec__, __file__, __path__, __loader__ set
    module.__class__ = DeferredModule
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    assert isinstance(module, DeferredModule)
    return module


def _forward(module: ModuleType, attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        _load(module)  # the package's own function replaces this one in its namespace
        return getattr(module, attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    return call


def defer_unused_stdlib() -> list[str]:
    """Put stand-ins for DEFERRED's packages not imported yet; returns their names."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    deferred = []
    with _LOCK:
        for name in DEFERRED:
            if name in sys.modules:
                continue
            module = _stand_in(name)
            if module is None:
                continue
            deferred.append(name)
            if name == "asyncio":
                import asyncio.coroutines  # a leaf module: collections, inspect, types

                setattr(module, "iscoroutine", asyncio.coroutines.iscoroutine)  # noqa: B010
            elif name == "importlib.metadata":
                for attr in ("version", "entry_points"):
                    setattr(module, attr, _forward(module, attr))
    return deferred


def defer_when_serving(argv: Sequence[str]) -> None:
    """The CLI's hook: only the long-running headless verbs, `serve` and `upstream` (the supermarket
    peer, which `python -m kanban_terminal.runtime upstream` already started so); the first argument:
    the CLI has no option before it."""
    if list(argv[1:2]) in (["serve"], ["upstream"]):
        defer_unused_stdlib()
