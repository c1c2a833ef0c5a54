"""`serve` in-process: what the headless process does once its services are up."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from kanban_terminal.runtime import run_serve
from tests.support.mqtt_lines import make_config, wait_for


def test_serve_freezes_what_start_up_built_so_full_collections_stay_short(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
    gc.unfreeze()  # whatever an earlier test froze
    stop = threading.Event()
    exit_codes: list[int] = []
    serving = threading.Thread(
        target=lambda: exit_codes.append(run_serve(config, tmp_path / "data", stop=stop))
    )
    serving.start()
    try:
        wait_for(lambda: gc.get_freeze_count() > 0, what="start-up objects frozen")
    finally:
        stop.set()
        serving.join(timeout=10)
        gc.unfreeze()
    assert exit_codes == [0]
