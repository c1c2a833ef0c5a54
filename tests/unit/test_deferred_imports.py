"""A deferred standard-library package behaves as the package itself, once anything uses it.

kanban_terminal/deferred_imports.py keeps asyncio, importlib.metadata and urllib.request out of a
ready `serve` (issue 19, RSS). Each case runs in a fresh interpreter: the stand-ins live in
`sys.modules`, and this test process has imported asyncio long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, *argv: str, env: dict[str, str] | None = None) -> object:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_stand_in_becomes_the_package_itself_at_its_first_use() -> None:
    result = run("""
        import json, sys
        from kanban_terminal.deferred_imports import DeferredModule, defer_unused_stdlib
        deferred = defer_unused_stdlib()
        import asyncio                      # binds the stand-in: nothing runs yet
        bound = asyncio
        before = isinstance(sys.modules["asyncio"], DeferredModule), "asyncio.events" in sys.modules

        async def answer():
            await asyncio.sleep(0)
            return 42

        value = asyncio.run(answer())       # the first use runs the package into the same object
        from asyncio import Queue           # and the names and submodules are all there
        print(json.dumps({
            "deferred": deferred,
            "before": before,
            "value": value,
            "same": sys.modules["asyncio"] is bound,
            "plain": type(bound).__name__,
            "queue": Queue is sys.modules["asyncio.queues"].Queue,
            "events": bound.events is sys.modules["asyncio.events"],
            "iscoroutine": bound.iscoroutine is sys.modules["asyncio.coroutines"].iscoroutine,
        }))
    """)
    assert result == {
        "deferred": ["asyncio", "importlib.metadata", "urllib.request"],
        "before": [True, False],
        "value": 42,
        "same": True,
        "plain": "module",
        "queue": True,
        "events": True,
        "iscoroutine": True,
    }


def test_names_read_while_a_library_is_imported_work_after_the_package_loads() -> None:
    """pydantic binds `importlib.metadata.version` and `entry_points` at import: forwarders that load
    the package when called give what the package gives."""
    code = """
        import json, sys
        if sys.argv[1] == "defer":
            from kanban_terminal.deferred_imports import defer_unused_stdlib
            defer_unused_stdlib()
        from importlib.metadata import entry_points, version
        import urllib.request
        loaded_early = type(sys.modules["importlib.metadata"]).__name__
        print(json.dumps({
            "early": loaded_early,
            "version": version("pydantic"),
            "scripts": sorted(e.name for e in entry_points(group="console_scripts")
                              if e.name == "kanban-terminal"),
            "proxies": sorted(urllib.request.getproxies()),
            "after": type(sys.modules["importlib.metadata"]).__name__,
        }))
    """
    env = os.environ | {"http_proxy": "http://proxy.example:3128"}
    deferred = run(code, "defer", env=env)
    plain = run(code, "plain", env=env)
    assert isinstance(deferred, dict) and isinstance(plain, dict)
    assert deferred.pop("early") == "DeferredModule"
    assert plain.pop("early") == "module"
    assert deferred == plain
    assert plain["scripts"] == ["kanban-terminal"] and plain["proxies"] == ["http"]


def test_threads_that_first_use_a_package_together_run_it_once() -> None:
    result = run("""
        import json, sys, threading
        from kanban_terminal.deferred_imports import defer_unused_stdlib
        defer_unused_stdlib()
        import asyncio
        loader = asyncio.__spec__.loader
        runs = []
        exec_module = loader.exec_module
        def counted(module):
            runs.append(module.__name__)
            exec_module(module)
        loader.exec_module = counted
        start = threading.Barrier(8)
        seen = []
        def use():
            start.wait()
            seen.append(asyncio.Queue)
        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(json.dumps({"runs": runs, "classes": len({id(c) for c in seen}), "n": len(seen)}))
    """)
    assert result == {"runs": ["asyncio"], "classes": 1, "n": 8}


def test_a_package_already_imported_and_an_operator_s_plugin_setting_are_left_alone() -> None:
    result = run(
        """
        import asyncio, json, os, sys
        from kanban_terminal.deferred_imports import defer_unused_stdlib
        deferred = defer_unused_stdlib()
        print(json.dumps({
            "deferred": deferred,
            "asyncio": sys.modules["asyncio"] is asyncio and type(asyncio).__name__,
            "plugins": os.environ["PYDANTIC_DISABLE_PLUGINS"],
        }))
        """,
        env=os.environ | {"PYDANTIC_DISABLE_PLUGINS": ""},
    )
    assert result == {
        "deferred": ["importlib.metadata", "urllib.request"],
        "asyncio": "module",
        "plugins": "",
    }


def test_only_the_serve_verb_and_the_runtime_module_defer() -> None:
    """The hooks: the CLI's package for `kanban-terminal serve` and `upstream` (not for other verbs), and
    `python -m kanban_terminal.runtime` (what benches and the fault suite start)."""
    code = """
        import json, runpy, sys
        sys.argv = sys.argv[1:]
        if sys.argv[0] == "runtime":
            try:
                runpy.run_module("kanban_terminal.runtime", run_name="__main__")
            except SystemExit:
                pass
        else:
            import kanban_terminal.cli
        print(json.dumps(type(sys.modules.get("asyncio")).__name__))
    """
    assert run(code, "kanban-terminal", "serve", "--help") == "DeferredModule"
    assert run(code, "kanban-terminal", "upstream", "--help") == "DeferredModule"
    assert run(code, "kanban-terminal", "status") in {"NoneType", "module"}
    assert run(code, "runtime", "--help") == "DeferredModule"
