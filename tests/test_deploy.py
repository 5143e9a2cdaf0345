"""What can be checked of the Kubernetes files without a cluster (nothing here deploys): the image
installs from the same lock, the manifests are valid YAML whose commands are real CLI commands, the
Helm values agree with the image and the code location, and both instance configurations load."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
WORKERS = ROOT / "deploy" / "k8s" / "workers.yaml"


def _dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_the_image_installs_the_locked_production_set_and_copies_what_exists() -> None:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    assert "pip install -c requirements.lock -e '.[production]'" in text
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    locked = {line.split("==")[0].lower() for line in (ROOT / "requirements.lock").read_text().splitlines()
              if "==" in line}
    for requirement in extras["production"]:
        name = re.split(r"[\[<>=!~;]", requirement)[0].lower()
        assert name in locked, f"{name} (production extra) is not pinned in requirements.lock"
    assert _dockerfile_env()["MLPLATFORM_PROFILE"] == "production"


def test_the_helm_values_match_the_image_and_the_code_location() -> None:
    values = yaml.safe_load(VALUES.read_text())
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["MLPLATFORM_PROFILE"] == "production"
    home = _dockerfile_env()["MLPLATFORM_HOME"]
    assert env["MLPLATFORM_HOME"] == home
    assert [m["mountPath"] for m in deployment["volumeMounts"]] == [home]
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["volumeMounts"][0]["mountPath"] == home
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["postgresql"]["enabled"] is False and values["concurrency"]["pools"]["defaultLimit"] >= 1
    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert secrets == {s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]}


def test_every_worker_manifest_runs_a_real_command() -> None:
    from mlplatform.cli import build_parser

    documents = [d for d in yaml.safe_load_all(WORKERS.read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    assert {"mlplatform-worker", "mlplatform-gpu-worker", "mlplatform-api"} <= deployments.keys()
    values = yaml.safe_load(VALUES.read_text())
    (user_code,) = values["dagster-user-deployments"]["deployments"]
    training_queue = {e["name"]: e["value"] for e in user_code["env"]}["MLPLATFORM_TRAINING_QUEUE"]
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        assert command[0] == "mlplatform"
        args = build_parser().parse_args(command[1:])  # exits on an unknown command or option
        assert {s["secretRef"]["name"] for s in container["envFrom"]} == {s["name"] for s in user_code["envSecrets"]}
        if name == "mlplatform-gpu-worker":
            assert args.queue == [training_queue]
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert deployment["spec"]["template"]["spec"]["nodeSelector"]
    claims = {d["metadata"]["name"] for d in documents if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {user_code["volumes"][0]["persistentVolumeClaim"]["claimName"]}


@pytest.mark.parametrize("profile", ["embedded", "production"])
def test_the_instance_configuration_of_each_profile_loads(profile, tmp_path, monkeypatch) -> None:
    from dagster._core.instance.config import dagster_instance_config

    from mlplatform.profile import Profile

    monkeypatch.setenv("MLPLATFORM_POSTGRES_URL", "postgresql://user:s3cr3t@db.example:5432/mlplatform")
    chosen = Profile(profile, "postgresql://user:s3cr3t@db.example:5432/mlplatform", "redis://cache:6379/0")
    (tmp_path / "dagster.yaml").write_text(chosen.instance_yaml())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert ("storage" in config) == (profile == "production")
    assert "s3cr3t" not in chosen.instance_yaml()  # the password stays in the environment
