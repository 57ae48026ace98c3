"""The production manifests stay in step with the mesh: every domain gets a code server
in each deployment variant, and the instance settings say the same thing everywhere.
(Rendering the Helm chart needs helm and a cluster, which CI does not have.)"""

from __future__ import annotations

from pathlib import Path

import yaml

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
    return {d.path.name for d in load_mesh()}


def test_the_grpc_workspace_has_one_server_per_domain():
    [workspace] = load(DEPLOY / "workspace.grpc.yaml")
    servers = {entry["grpc_server"]["location_name"]: entry["grpc_server"] for entry in workspace["load_from"]}
    assert set(servers) == domains()
    for name, server in servers.items():
        assert server["port"] == {"env": f"MESH_{name.upper()}_PORT"}


def test_the_helm_values_have_one_code_server_per_domain_on_its_own_definitions():
    [values] = load(DEPLOY / "helm" / "values.yaml")
    deployments = values["dagster-user-deployments"]["deployments"]
    by_location = {d["codeServerArgs"][d["codeServerArgs"].index("--location-name") + 1]: d for d in deployments}
    assert set(by_location) == domains()
    for name, deployment in by_location.items():
        definitions = deployment["codeServerArgs"][deployment["codeServerArgs"].index("-f") + 1]
        assert definitions == f"domains/{name}/definitions.py" and (REPO_ROOT / definitions).exists()
        assert deployment["envSecrets"] == [{"name": "mesh-secrets"}]


def test_the_chart_gets_the_instance_concurrency_of_deploy_dagster_yaml():
    [values] = load(DEPLOY / "helm" / "values.yaml")
    [instance] = load(DEPLOY / "dagster.yaml")
    assert values["additionalInstanceConfig"]["concurrency"] == instance["concurrency"]
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]


def test_secrets_come_from_the_secret_and_everything_else_from_the_config_map():
    [instance] = load(DEPLOY / "dagster.yaml")
    config_map = next(d for d in load(DEPLOY / "k8s" / "mesh.yaml") if d["kind"] == "ConfigMap")["data"]
    needed = env_references(instance)
    assert needed - set(config_map) == {"DAGSTER_PG_PASSWORD"}
    assert not any("PASSWORD" in k or "BROKER" in k or "SALT" in k for k in config_map)
