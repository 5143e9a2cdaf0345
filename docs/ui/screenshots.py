"""Screenshots of the Dagster UI's pages of a state directory, taken by headless Chromium (Debian's
`chromium` package: `apt-get install chromium`).

    MLPLATFORM_HOME=... DAGSTER_HOME=$MLPLATFORM_HOME/dagster .venv/bin/python docs/ui/screenshots.py

It starts `dagster-webserver` on a free port for the state directory (its own process group, stopped
at the end), waits until the code location has loaded, and writes one PNG per page to docs/ui/
(`--out`). The pages are the assets that report results: their latest materialization's metadata
shows as tables and numbers, and the Plots tab charts the numbers over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "model_evaluation": "/assets/model_evaluation",
    "feature_drift": "/assets/feature_drift",
    "live_performance": "/assets/live_performance",
    "fct_flights": "/assets/fct_flights",
    "lineage": "/asset-groups",
}
LOADED = '{"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}'
# The UI's "Join the Dagster community" pop-up would cover the page: marked seen, as its Skip does.
NUX_SEEN = '{"query": "mutation { setNuxSeen }"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, body: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=body.encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=5))["data"]


def wait_until_loaded(url: str, webserver: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if webserver.poll() is not None:
            sys.exit(f"dagster-webserver exited with {webserver.returncode}")
        try:
            entries = graphql(url, LOADED)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except OSError:
            pass
        time.sleep(1)
    sys.exit(f"the code location did not load in {timeout:.0f} s")


def screenshot(browser: str, url: str, out: Path, width: int, height: int) -> None:
    # The UI is a single-page app: the virtual time budget lets its queries answer and render before
    # the picture is taken.
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", "--virtual-time-budget=20000",
                    f"--screenshot={out}", url], check=True, capture_output=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("pages", nargs="*", default=list(PAGES), help=f"some of {', '.join(PAGES)}")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium: apt-get install chromium")
    if "DAGSTER_HOME" not in os.environ:
        sys.exit("set MLPLATFORM_HOME and DAGSTER_HOME to the state directory to show")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    webserver = subprocess.Popen([str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1",
                                  "-p", str(port), "-w", str(ROOT / "workspace.yaml")],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    try:
        wait_until_loaded(url, webserver)
        graphql(url, NUX_SEEN)
        args.out.mkdir(parents=True, exist_ok=True)
        for name in args.pages:
            out = args.out / f"{name}.png"
            screenshot(browser, url + PAGES[name], out, args.width, args.height)
            print(out)
    finally:
        os.killpg(webserver.pid, signal.SIGTERM)
        webserver.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
