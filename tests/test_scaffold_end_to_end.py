"""A use case the platform has never seen, end to end: `mlplatform new-use-case` writes one into a copy
of the checkout, and, changed in nothing, it lands, builds, trains to a first champion and answers
`/predict` with its own names and every feature online. This is the recipe docs/use_cases.md gives a
team that brings its own data (`tests/test_scaffold.py` checks what the scaffold writes, quickly)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fault_helpers import stop_group
from servers import free_port, wait_for_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "trips"


def _checkout_copy(root: Path) -> Path:
    """What the commands read of the checkout: the platform's package, the dbt project (its last
    parse too, so the new models are parsed partially) and the Feast repository. The scaffold writes
    into the copy; the checkout the other modules read stays as it is."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "logs")
    for folder in ("platform", "dbt_project", "feature_repo"):
        shutil.copytree(ROOT / folder, root / folder, ignore=skip)
    shutil.copy2(ROOT / "workspace.yaml", root / "workspace.yaml")
    return root


def test_a_scaffolded_use_case_runs_to_a_champion_and_answers_as_it_is(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    home = tmp_path / "home"
    # The copy's package, not the installed checkout's; the use case's default settings, not the suite's.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLPLATFORM_")},
           "PYTHONPATH": str(checkout / "platform"), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLPLATFORM_USE_CASES": NAME, "MLPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}

    def mlplatform(*args: str) -> str:
        done = subprocess.run([str(BIN / "mlplatform"), *args], env=env, cwd=checkout, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"mlplatform {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    said = mlplatform("new-use-case", NAME, "--task", "binary", "--horizon", "7")
    assert (checkout / "platform" / "mlplatform" / "defs" / NAME / "defs.yaml").exists(), said
    assert not (ROOT / "platform" / "mlplatform" / "defs" / NAME).exists()
    mlplatform("prepare")
    assert "landed through 2020-02-29" in mlplatform("replay", "--days", "60", "--no-events")
    built = mlplatform("pipeline")
    assert "0 failed; champion: version 1" in built and f"{NAME}_retrain" in built, built

    status = json.loads(mlplatform("status", "--json"))
    assert status["models"]["aliases"]["champion"]["version"] == 1, status["models"]

    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen([str(BIN / "mlplatform"), "serve", "--port", str(port), "--quiet"], env=env,
                                  cwd=checkout, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout_s=120)
        # The request as the API documents it: the example of its one entity key.
        schema = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=30).json()["components"]["schemas"]
        request = {"entity_id": schema["Request"]["properties"]["entity_id"]["examples"][0],
                   "event_date": "2020-02-29"}
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=request, timeout=60)
    finally:
        stop_group(server)
    assert answer.status_code == 200, answer.text + (tmp_path / "serve.log").read_text()[-3000:]
    prediction = answer.json()
    assert prediction["model_version"] == 1 and prediction["defaults_used"] == [], prediction
    assert 0.0 <= prediction["predicted_active_next_days"] <= 1.0
    assert prediction[f"{NAME}_day_id"].startswith(request["entity_id"]), prediction
