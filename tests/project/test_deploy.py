"""deploy/: each file loaded and validated the way its consumer loads it, and held consistent with
the code location, the image and the other files; the lock file matches what is installed."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from importlib import metadata

import pytest
import yaml
from dagster import DagsterInstance, DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
POSTGRES_ENV = {"DAGSTER_POSTGRES_HOST": "db", "DAGSTER_POSTGRES_PORT": "5432", "DAGSTER_POSTGRES_DB": "dagster",
                "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": "not-a-secret"}


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def env_names(value) -> set[str]:
    """Every environment variable a Dagster config refers to (``{env: NAME}``)."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_names(v) for v in value)) if value else set()
    return set()


def test_the_production_instance_yaml_validates_with_postgres_storage_and_the_queue(monkeypatch):
    for name, value in POSTGRES_ENV.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(DEPLOY))
    assert set(config["storage"]) == {"postgres"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    # Storage credentials come only from the environment: no literal value in the file.
    assert env_names(load("dagster.yaml")["storage"]) == set(POSTGRES_ENV)


def test_an_instance_without_its_database_variables_names_the_missing_one(monkeypatch, tmp_path):
    for name in POSTGRES_ENV:
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    with pytest.raises(DagsterInvalidConfigError, match=r'environment variable "DAGSTER_POSTGRES_\w+" which is not set'):
        DagsterInstance.from_config(str(tmp_path))


def test_the_compose_file_wires_postgres_the_code_server_webserver_and_daemon():
    compose = load("docker-compose.yaml")
    services = compose["services"]
    assert {"postgres", "code", "webserver", "daemon"} <= set(services)
    image_cmd = re.search(r'^CMD \[(.*)\]$', (REPO / "Dockerfile").read_text(), re.M).group(1)
    code_port = int(re.search(r'"-p", "(\d+)"', image_cmd).group(1))

    # The webserver and daemon load deploy/workspace.yaml (in the image), which Dagster accepts
    # and which points at the code service on the port the image's command serves.
    workspace = load("workspace.yaml")
    ensure_workspace_config(workspace, str(DEPLOY / "workspace.yaml"))
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"]["host"] == "code" and entry["grpc_server"]["port"] == code_port
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/app/deploy/workspace.yaml" in " ".join(services[name]["command"])
        assert services[name]["depends_on"]["code"] and services[name]["depends_on"]["postgres"]
    assert "code" not in services["code"].get("command", [])  # the image's own CMD serves the code

    # Every service that opens the instance gets every variable deploy/dagster.yaml reads, and
    # mounts that file as its instance config.
    instance_vars = env_names(load("dagster.yaml"))
    for name in ("code", "webserver", "daemon"):
        service = services[name]
        assert instance_vars <= set(service["environment"]), name
        assert "./dagster.yaml:/opt/dagster/home/dagster.yaml:ro" in service["volumes"], name

    # Secrets are interpolated from the env file at `up` time, never written here, and the
    # provider's credentials reach only the service where runs execute.
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key or "SECRET" in key or key == "AWS_ACCESS_KEY_ID":
                assert str(value).startswith("${"), (name, key)
    assert "AWS_SECRET_ACCESS_KEY" in services["code"]["environment"]
    assert all("AWS_SECRET_ACCESS_KEY" not in services[name]["environment"] for name in ("webserver", "daemon"))


def published_ports(service: dict) -> list[str]:
    """A compose service's published ports, each as written (``[host_ip:]host:container``)."""
    return [str(port) for port in service.get("ports", [])]


def test_nobody_reaches_the_webserver_of_the_compose_file_without_a_password():
    compose = load("docker-compose.yaml")
    services, networks = compose["services"], compose["networks"]
    # The webserver publishes nothing and sits only on a network with no route in or out.
    webserver = services["webserver"]
    assert "ports" not in webserver and webserver["networks"] == ["internal"]
    assert networks["internal"]["internal"] is True
    # The one published port is the proxy's, on 127.0.0.1 unless the env file says otherwise.
    published = {name: published_ports(service) for name, service in services.items() if published_ports(service)}
    assert list(published) == ["proxy"], published
    (port,) = published["proxy"]
    assert port.startswith("${HYBRID_WEB_BIND:-127.0.0.1}:") and not port.startswith("0.0.0.0")
    assert not any(":3000" in port for ports in published.values() for port in ports)
    proxy = services["proxy"]
    assert set(proxy["networks"]) == {"internal", "edge"}
    # It asks for a user and a password hash that the env file must set (no default, no literal).
    for name in ("HYBRID_WEB_USER", "HYBRID_WEB_PASSWORD_HASH"):
        assert str(proxy["environment"][name]).startswith(f"${{{name}:?"), name
    (mounted,) = [volume for volume in proxy["volumes"] if volume.endswith(":/etc/caddy/Caddyfile:ro")]
    caddyfile = (DEPLOY / mounted.split(":")[0]).read_text()
    site = caddyfile[caddyfile.index("{$HYBRID_WEB_ADDRESS"):]
    assert site.index("basic_auth") < site.index("reverse_proxy webserver:3000")
    assert "{$HYBRID_WEB_USER} {$HYBRID_WEB_PASSWORD_HASH}" in site
    assert "admin off" in caddyfile
    # Where runs execute, the approvers file is mounted read-only and named by HYBRID_APPROVERS_FILE.
    code = services["code"]
    target = code["environment"]["HYBRID_APPROVERS_FILE"]
    assert f"./approvers.json:{target}:ro" in code["volumes"]


def test_the_helm_webserver_is_reached_only_through_an_ingress_with_basic_auth_and_tls():
    values = load("helm/values.yaml")
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    ingress = values["ingress"]
    assert ingress["enabled"] is True
    annotations = ingress["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert annotations["nginx.ingress.kubernetes.io/auth-secret"] == "dagster-webserver-basic-auth"
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert ingress["dagsterWebserver"]["tls"]["enabled"] is True
    assert "dagster-webserver-basic-auth" in (DEPLOY / "helm" / "values.yaml").read_text().split("\nglobal:")[0]
    # The code location and its run pods read the approvers from a read-only ConfigMap.
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    run_pods = values["runLauncher"]["config"]["k8sRunLauncher"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert "HYBRID_APPROVERS_FILE=" + env["HYBRID_APPROVERS_FILE"] in run_pods["envVars"]
    for pod in (deployment, run_pods):
        assert {"name": "approvers", "configMap": {"name": "hybrid-quantum-approvers"}} in pod["volumes"]
        (mount,) = [m for m in pod["volumeMounts"] if m["name"] == "approvers"]
        assert mount["readOnly"] is True and env["HYBRID_APPROVERS_FILE"].startswith(mount["mountPath"] + "/")


def test_the_approvers_example_lists_the_default_roles():
    from hybrid_resources.approvals import DEFAULT_ROLES

    example = json.loads((DEPLOY / "approvers.json.example").read_text())
    assert example["roles"] == DEFAULT_ROLES
    assert all(person["key"].startswith("ssh-ed25519 ") and person["roles"] for person in example["people"].values())


def test_the_image_runs_as_a_user_who_owns_the_data_root_and_the_instance_home_but_not_the_code():
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")  # runs read files others drop into the zones
    uid = users[-1].split(":")[0]
    assert re.search(rf"useradd [^\n]*--uid {uid}\b", dockerfile)
    (chown,) = re.findall(r"chown -R (\S+) ([^\\\n]+)", dockerfile)
    assert set(chown[1].split()) == {'"$DAGSTER_HOME"', '"$HYBRID_DATA_DIR"'}  # the app folder stays root's
    assert dockerfile.index("chown -R") < dockerfile.rindex("USER ") < dockerfile.index("CMD [")


def test_the_env_examples_cover_what_the_compose_file_interpolates_and_hold_no_secret():
    compose_text = (DEPLOY / "docker-compose.yaml").read_text()
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", compose_text))  # not $${...}, an escaped $
    for example in sorted((DEPLOY / "env").glob("*.env.example")):
        values = dict(line.split("=", 1) for line in example.read_text().splitlines()
                      if line and not line.startswith("#"))
        assert interpolated <= set(values), (example.name, interpolated - set(values))
        for key in ("DAGSTER_POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert values[key] == "", (example.name, key)
    assert len(list((DEPLOY / "env").glob("*.env.example"))) >= 2  # one variable set per environment
    assert "deploy/env/*.env" in (REPO / ".gitignore").read_text().splitlines()
    assert "deploy/env/*.env" in (REPO / ".dockerignore").read_text().splitlines()


def test_the_helm_values_run_this_code_location_with_the_same_limits_as_the_instance_yaml():
    values = load("helm/values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert deployment["image"]["tag"] != "latest"  # a run must use the image its code server runs
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]
    assert values["generatePostgresqlPasswordSecret"] is False
    secrets = {secret["name"] for secret in deployment["envSecrets"]}
    assert secrets == {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}

    # The chart renders `concurrency` into the instance's concurrency block; Dagster rejects run
    # limits set both there and on the queued run coordinator.
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert not values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    instance = load("dagster.yaml")["concurrency"]
    helm = values["concurrency"]
    assert helm["enabled"] is True
    assert helm["pools"] == {"defaultLimit": instance["pools"]["default_limit"],
                             "granularity": instance["pools"]["granularity"]}
    assert helm["runs"] == {"maxConcurrentRuns": instance["runs"]["max_concurrent_runs"],
                            "tagConcurrencyLimits": instance["runs"]["tag_concurrency_limits"]}


def test_pods_share_only_postgres_and_the_bucket_so_they_need_no_claim_and_no_node_affinity():
    values_text = (DEPLOY / "helm" / "values.yaml").read_text() + (DEPLOY / "executors" / "k8s_job_executor.yaml").read_text()
    for pinned in ("persistentVolumeClaim", "ReadWriteOnce", "nodeSelector", "affinity"):
        assert pinned not in values_text.replace("no node affinity", ""), pinned
    values = load("helm/values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    run_pods = values["runLauncher"]["config"]["k8sRunLauncher"]
    steps = yaml.safe_load((DEPLOY / "executors" / "k8s_job_executor.yaml").read_text())["execution"]["config"]
    code = {item["name"]: item["value"] for item in deployment["env"]}
    for settings in (dict(var.split("=", 1) for var in run_pods["envVars"]), dict(var.split("=", 1) for var in steps["env_vars"])):
        for name in ("HYBRID_DATA_DIR", "HYBRID_SCRATCH_DIR", "HYBRID_WAREHOUSE_URL"):
            assert settings[name] == code[name], name
    assert code["HYBRID_DATA_DIR"].startswith("s3://") and code["HYBRID_WAREHOUSE_URL"].startswith("postgresql://")
    assert ":" not in code["HYBRID_WAREHOUSE_URL"].split("//")[1].split("@")[0]  # no password: PGPASSWORD, a Secret
    for pod in (deployment, run_pods):
        assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]
        assert {"name": "scratch", "mountPath": code["HYBRID_SCRATCH_DIR"]} in pod["volumeMounts"]
        assert "hybrid-quantum-warehouse" in {secret["name"] for secret in pod["envSecrets"]}
    logs = values["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager"
    assert code["HYBRID_DATA_DIR"].startswith(f"s3://{logs['config']['s3ComputeLogManager']['bucket']}/")


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_the_installed_stack_is_exactly_the_lock():
    locked = locked_versions()
    assert len(locked) > 50
    installed = {re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version
                 for dist in metadata.distributions()}
    mismatched = {name: (version, installed.get(name)) for name, version in locked.items()
                  if installed.get(name) != version}
    assert not mismatched, f"installed versions differ from requirements.lock (run `make install`): {mismatched}"


def test_the_lock_covers_every_dependency_of_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", spec).group(0)).lower() for spec in wanted}
    assert names - set(locked_versions()) == set(), "requirements.lock is stale: run `make lock`"


def test_the_k8s_step_executor_file_validates_against_dagster_k8s_and_matches_the_helm_run_pods(monkeypatch):
    from dagster import Definitions, asset
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor

    from hybrid_assets.executors import executor_from_env, k8s_executor_config

    schema = k8s_job_executor.config_schema.as_field().config_type
    config = k8s_executor_config()
    validated = process_config(schema, config)
    assert validated.success, validated.errors
    assert not process_config(schema, {**config, "max_concurrent": "four"}).success  # the check can fail
    # Step pods get what the Helm chart's run pods get: the secrets and the scratch volume.
    run_pods = load("helm/values.yaml")["runLauncher"]["config"]["k8sRunLauncher"]
    assert config["env_secrets"] == [secret["name"] for secret in run_pods["envSecrets"]]
    assert config["volumes"] == run_pods["volumes"] and config["volume_mounts"] == run_pods["volumeMounts"]
    # HYBRID_EXECUTOR picks it, and a code location with it loads.
    monkeypatch.setenv("HYBRID_EXECUTOR", "k8s")
    executor = executor_from_env()
    assert executor.name == "k8s"

    @asset
    def one() -> int:
        return 1

    Definitions.validate_loadable(Definitions(assets=[one], executor=executor))
    monkeypatch.setenv("HYBRID_EXECUTOR", "multiprocess")
    assert executor_from_env().name == "multiprocess"
    monkeypatch.setenv("HYBRID_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="HYBRID_EXECUTOR must be one of"):
        executor_from_env()
