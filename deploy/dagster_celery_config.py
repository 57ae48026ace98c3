"""The Celery workers' settings (platform_lib/executor.py, `worker_settings`).

dagster-celery's worker app (`celery -A dagster_celery.app`) reads a module of this name
when it can import one; `mesh worker` puts this folder first on the workers' PYTHONPATH.
Broker and backend come from the worker's environment, as where runs start, and are
never written to disk.
"""

from platform_lib.executor import worker_settings

globals().update(worker_settings())
