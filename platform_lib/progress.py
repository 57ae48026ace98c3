"""The progress lines of `mesh materialize`: a line as each step of a run starts, and one
for each of its products as it ends, on stderr while the run goes."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import TextIO

import dagster as dg
from dagster._core.storage.dagster_run import RunsFilter

from platform_lib.outcomes import RunOutcomes, checks_summary, without_product

PROGRESS = "mesh_progress"
SAY = "mesh/say"
"""Metadata key of an engine event whose text is one of the progress lines (a run told to stop says what it waits for)."""


class Progress(logging.Handler):
    """Prints a line as each step of a run starts, and one for each of its products as it
    ends, from the run's events as they come: as a log handler of an in-process run, to
    which Dagster hands each event as it happens, or `following` a run in the instance."""

    def __init__(self, outcomes: RunOutcomes, out: TextIO):
        super().__init__(logging.DEBUG)
        self.outcomes = outcomes
        self.out = out
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = record.dagster_meta["dagster_event"]  # Dagster's log manager sets it on every record
        if event is not None:
            self.receive(event, record.created)

    def receive(self, event: dg.DagsterEvent, timestamp: float) -> None:
        if event.is_engine_event and SAY in event.engine_event_data.metadata:
            self._line(timestamp, event.message)
            return
        step = self.outcomes.by_step.get(event.step_key)
        if step is None:
            return
        self.outcomes.add(event)
        if event.event_type == dg.DagsterEventType.STEP_START:
            self.started[event.step_key] = timestamp
            self._line(timestamp, f"building {', '.join(o.product for o in step)}")
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            seconds = timestamp - self.started.get(event.step_key, timestamp)
            for o in step:
                rows = "" if o.rows is None else f", {o.rows:,} rows"
                summary = checks_summary(o)
                checks = f", checks {summary}" if summary else ""
                why = without_product(o).partition("\n")[0]
                self._line(timestamp, f"{o.product}: {o.status}{rows}{checks} ({seconds:.1f} s){': ' + why if why else ''}")

    def _line(self, timestamp: float, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S', time.localtime(timestamp))}  {text}", file=self.out, flush=True)

    def logger(self) -> dg.LoggerDefinition:
        def progress_logger(_) -> logging.Logger:
            logger = logging.Logger(PROGRESS, logging.DEBUG)
            logger.addHandler(self)
            return logger

        return dg.LoggerDefinition(progress_logger, description="the progress lines of `mesh materialize`")

    @contextlib.contextmanager
    def following(self, instance: dg.DagsterInstance, tags: dict[str, str], interval: float = 0.5) -> Iterator[None]:
        """For a run whose steps run elsewhere: a thread reads the events of the run with
        `tags` from the instance, where the workers write them, until the block ends."""
        done = threading.Event()

        def follow() -> None:
            cursor = None
            while True:
                ending = done.wait(interval)
                try:
                    runs = instance.get_run_records(RunsFilter(tags=tags), limit=1)
                    read = instance.get_records_for_run(runs[0].dagster_run.run_id, cursor=cursor) if runs else None
                except Exception as error:  # the instance's database went away: stop the lines, not the run
                    print(f"no more progress lines: reading the run's events failed: {error}", file=self.out)
                    return
                if read:
                    cursor = read.cursor
                    for record in read.records:
                        if record.event_log_entry.dagster_event:
                            self.receive(record.event_log_entry.dagster_event, record.event_log_entry.timestamp)
                if ending and not (read and read.has_more):
                    return

        thread = threading.Thread(target=follow, name=PROGRESS, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
