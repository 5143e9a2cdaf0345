"""The Celery application the production profile's workers run (`mlplatform worker`).

It is dagster-celery's own (its step task, its `dagster` queue) with the broker and result backend
of MLPLATFORM_REDIS_URL, the ones the runs' executor sends steps through (mlplatform/profile.py).
A worker runs a step by rebuilding its job from the code location, so it needs this checkout (or
the image), the environment of the profile and the state directory's volume.
"""

from celery.signals import worker_init
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from mlplatform.preload import STEP_LIBRARIES, preload
from mlplatform.profile import current

_profile = current()
app = make_app(CeleryExecutor.for_cli(broker=_profile.redis_url, backend=_profile.redis_url).app_args())
# A worker says which step it started, and takes one only when it has a free slot: a worker lost
# mid-step is then found, and its step failed, by the watch in automation/lost_workers.py.
app.conf.update(task_track_started=True, worker_disable_prefetch=True)
# Task names are dagster-celery's, so the executor's messages find them.
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)


@worker_init.connect
def _import_step_libraries(**_) -> None:
    """The libraries steps use, imported once in the worker's main process: its pool's processes
    are forked from it and start with them (with several use cases enabled each step gets a fresh
    process, which would otherwise import them all again). Only libraries: which use case a step
    builds is decided in its own process (mlplatform/locations.py)."""
    preload(STEP_LIBRARIES)
