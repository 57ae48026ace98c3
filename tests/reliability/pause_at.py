"""`mesh materialize DOMAIN...` that stops for good at one named moment of the first product's build.

    python pause_at.py MOMENT MARKER_FILE DOMAIN...

The real platform code runs; at the moment the process writes MARKER_FILE and sleeps,
so a test can SIGKILL it exactly there, with the real files and DuckDB handles open.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from pathlib import Path

# moment: (module, function, whether to stop before or after the real call, the file the
# call must write for it to stop there, of a function that writes several)
MOMENTS = {
    "after_ingest": ("platform_lib.factories.ingest", "ingest", "after", None),
    "after_transform": ("platform_lib.factories.transform", "run_sql", "after", None),
    "after_checks": ("platform_lib.factories.product", "run_checks", "after", None),
    "before_pointer_switch": ("platform_lib.output_port", "_write_json_atomically", "before", "snapshot.json"),
    "before_prune": ("platform_lib.output_port", "prune", "before", None),
}


def stop_at(moment: str, marker: Path) -> None:
    module_name, name, when, writing = MOMENTS[moment]
    module = importlib.import_module(module_name)
    real = getattr(module, name)

    @functools.wraps(real)
    def stopping(*args, **kwargs):
        if writing and Path(args[0]).name != writing:
            return real(*args, **kwargs)
        if when == "after":
            real(*args, **kwargs)
        marker.write_text(moment)
        time.sleep(3600)

    setattr(module, name, stopping)


if __name__ == "__main__":
    from platform_lib import cli

    stop_at(sys.argv[1], Path(sys.argv[2]))
    sys.exit(cli.main(["materialize", *sys.argv[3:]]))
