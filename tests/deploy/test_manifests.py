"""The production manifests stay in step with the mesh: every domain gets a code server
in each deployment variant, and the instance settings say the same thing everywhere.
(Rendering the Helm chart needs helm and a cluster, which CI does not have.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from dagster._core.instance.config import dagster_instance_config

from platform_lib.executor import worker_settings
from platform_lib.mesh import load_mesh
from platform_lib.storage import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def load(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def env_references(node) -> set[str]:
    """Every variable a Dagster config reads through `{env: NAME}`."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(env_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(env_references(v) for v in node))
    return set()


def domains() -> set[str]:
    """The repository's domains, a fork's own too (not the tests' sample): each needs its code server in production."""
    return {d.path.name for d in load_mesh(REPO_ROOT / "domains")}


def test_the_grpc_workspace_has_one_server_per_domain():
    [workspace] = load(DEPLOY / "workspace.grpc.yaml")
    servers = {entry["grpc_server"]["location_name"]: entry["grpc_server"] for entry in workspace["load_from"]}
    assert set(servers) == domains(), "each domain under domains/ needs its code server here (deploy/README.md)"
    for name, server in servers.items():
        assert server["port"] == {"env": f"MESH_{name.upper()}_PORT"}


def test_the_helm_values_have_one_code_server_per_domain_on_its_own_definitions():
    [values] = load(DEPLOY / "helm" / "values.yaml")
    deployments = values["dagster-user-deployments"]["deployments"]
    by_location = {d["codeServerArgs"][d["codeServerArgs"].index("--location-name") + 1]: d for d in deployments}
    assert set(by_location) == domains(), "each domain under domains/ needs its code server here (deploy/README.md)"
    for name, deployment in by_location.items():
        definitions = deployment["codeServerArgs"][deployment["codeServerArgs"].index("-f") + 1]
        assert definitions == f"domains/{name}/definitions.py" and (REPO_ROOT / definitions).exists()
        assert deployment["envSecrets"] == [{"name": "mesh-secrets"}]
        # The run launcher repeats none of the server's env, secrets and volume: its run pods get them from here.
        assert deployment.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]


def test_the_chart_writes_the_instance_settings_of_deploy_dagster_yaml(monkeypatch, tmp_path):
    """The chart writes a custom run coordinator and `additionalInstanceConfig` as given, and
    run monitoring from its values. (From its own QueuedRunCoordinator values it would write
    `max_concurrent_runs: -1`, which Dagster refuses beside a `concurrency` block.)"""
    [values] = load(DEPLOY / "helm" / "values.yaml")
    [instance] = load(DEPLOY / "dagster.yaml")
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "CustomRunCoordinator"
    coordinator = daemon["runCoordinator"]["config"]["customRunCoordinator"]
    assert {k: coordinator[k] for k in ("module", "class")} == instance["run_coordinator"]
    assert values["additionalInstanceConfig"] == {"concurrency": instance["concurrency"]}
    assert daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"] == instance["run_monitoring"]["free_slots_after_run_end_seconds"]
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]

    for name in env_references(instance):
        monkeypatch.setenv(name, "5432")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({**instance, "run_coordinator": coordinator, **values["additionalInstanceConfig"]}))
    dagster_instance_config(str(tmp_path))  # raises on what Dagster would refuse to load


def test_the_image_has_the_run_launcher_the_chart_names():
    [values] = load(DEPLOY / "helm" / "values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    pins = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    postgres = next(p for p in pins["dependencies"] if p.startswith("dagster-postgres=="))
    assert pins["optional-dependencies"]["k8s"] == [postgres.replace("dagster-postgres", "dagster-k8s")]
    assert 'pip install --no-cache-dir -e ".[k8s]"' in (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_secrets_come_from_the_secret_and_everything_else_from_the_config_map():
    [instance] = load(DEPLOY / "dagster.yaml")
    config_map = next(d for d in load(DEPLOY / "k8s" / "mesh.yaml") if d["kind"] == "ConfigMap")["data"]
    needed = env_references(instance)
    assert needed - set(config_map) == {"DAGSTER_PG_PASSWORD"}
    assert not any("PASSWORD" in k or "BROKER" in k or "SALT" in k for k in config_map)
    # The workers read the password from the Secret the chart's pods read it from: one place to rotate it.
    [worker] = next(d for d in load(DEPLOY / "k8s" / "mesh.yaml") if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"]
    [password] = [e for e in worker["env"] if e["name"] == "DAGSTER_PG_PASSWORD"]
    [values] = load(DEPLOY / "helm" / "values.yaml")
    assert password["valueFrom"]["secretKeyRef"] == {"name": values["global"]["postgresqlSecretName"], "key": "postgresql-password"}


def test_the_celery_workers_take_the_queue_the_code_locations_send_steps_to():
    """`mesh worker` listens on MESH_CELERY_QUEUE: the workers must read the settings the code locations read."""
    documents = load(DEPLOY / "k8s" / "mesh.yaml")
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    [worker] = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"]
    [values] = load(DEPLOY / "helm" / "values.yaml")
    assert worker["command"][:2] == ["mesh", "worker"]
    assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in worker["envFrom"]
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert {"name": config_map["metadata"]["name"]} in deployment["envConfigMaps"]


def test_the_workers_and_the_chart_share_the_image_the_database_and_the_volume():
    [values] = load(DEPLOY / "helm" / "values.yaml")
    documents = load(DEPLOY / "k8s" / "mesh.yaml")
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    [worker] = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"]
    deployments = values["dagster-user-deployments"]["deployments"]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")

    image = deployments[0]["image"]
    assert all(d["image"] == image for d in deployments)
    assert worker["image"] == f"{image['repository']}:{image['tag']}"
    assert f"-t {worker['image']} ." in dockerfile

    postgres = values["postgresql"]
    assert {k: config_map[k] for k in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_DB")} == {
        "DAGSTER_PG_HOST": postgres["postgresqlHost"], "DAGSTER_PG_PORT": str(postgres["service"]["port"]),
        "DAGSTER_PG_USER": postgres["postgresqlUsername"], "DAGSTER_PG_DB": postgres["postgresqlDatabase"],
    }

    # Code servers, their runs and the workers mount one volume where MESH_DATA_DIR and the ports are.
    [mount] = worker["volumeMounts"]
    assert all(d["volumeMounts"] == [mount] for d in deployments)
    assert config_map["MESH_DATA_DIR"] == mount["mountPath"] and f"MESH_DATA_DIR={mount['mountPath']}" in dockerfile
    assert config_map["MESH_PORTS_URL"].removeprefix("file://").startswith(mount["mountPath"] + "/")
    # The workers find their settings (deploy/ beside platform_lib/, installed editable) and the instance file where the image puts them.
    assert "COPY deploy ./deploy" in dockerfile and 'pip install --no-cache-dir -e ".' in dockerfile
    assert 'cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"' in dockerfile


def test_redis_hands_a_task_back_no_sooner_than_the_daemon_fails_its_run():
    """A shorter visibility timeout would hand a step still running to a second worker."""
    [instance] = load(DEPLOY / "dagster.yaml")
    assert worker_settings()["broker_transport_options"]["visibility_timeout"] >= instance["run_monitoring"]["max_runtime_seconds"]
