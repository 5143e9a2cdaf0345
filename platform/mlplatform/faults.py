"""Named points where a test can stop the process, to cause a crash at an exact moment.

`MLPLATFORM_PAUSE_AT=<point>` makes the process that reaches the point write
`$MLPLATFORM_HOME/paused_at_<point>` and sleep: the test then kills its process group with
`kill -9`, as an operator's machine would. Unset (always, outside tests), a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import time

PAUSE_ENV = "MLPLATFORM_PAUSE_AT"


def crash_point(name: str) -> None:
    if os.environ.get(PAUSE_ENV) != name:
        return
    from mlplatform.state import StatePaths

    marker = StatePaths.resolve(None).home / f"paused_at_{name}"
    marker.write_text(str(os.getpid()))
    while True:  # until killed
        time.sleep(1)
