"""What tests do to a running embedded stack beyond starting and stopping it."""

from __future__ import annotations

from conftest import RunningStack

from infra.embedded import start_tansu


def restart_broker_and_services(running: RunningStack) -> None:
    """What a second `make up` does to the data Valkey and chDB keep: a new broker (the
    embedded one keeps its logs in memory, so every topic starts again at offset 0), a new
    worker and ingest. Returns once the query API listens, before the worker joins its group."""
    stack = running.stack
    for name in ("ingest", "materializer", "tansu"):
        stack.processes.pop(name).stop()
    stack.processes["tansu"] = start_tansu(running.settings, stack.log_dir)
    stack.start_worker()
    stack.start_ingest()
