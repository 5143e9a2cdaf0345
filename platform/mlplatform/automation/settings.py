"""Settings the sensors share: whether they start running, and how often they look."""

import os

import dagster as dg

SENSORS_ENV = "MLPLATFORM_SENSORS"


def sensor_status() -> dg.DefaultSensorStatus:
    """Sensors run from the start (`make run`), unless MLPLATFORM_SENSORS=stopped: then turn them on
    in the UI (Automation) when you want them."""
    value = os.environ.get(SENSORS_ENV, "running").strip().lower()
    if value not in ("running", "stopped"):
        raise ValueError(f"{SENSORS_ENV} must be 'running' or 'stopped', not {value!r}")
    return dg.DefaultSensorStatus.RUNNING if value == "running" else dg.DefaultSensorStatus.STOPPED
