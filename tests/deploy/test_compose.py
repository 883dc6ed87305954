"""The Docker Compose deployment is valid and wired the way the pipeline needs, checked without Docker."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.conftest import ROOT

INFRA = {"postgres", "redis", "warehouse", "events"}
INIT = "airflow-init"
# Each long-running Airflow service and the command it runs.
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
AIRFLOW_SERVICES = {*AIRFLOW_COMMANDS, INIT}
# Airflow setting -> the .env variable that holds its one value for every component.
SHARED_SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
}
PASSWORDS = {"AIRFLOW_DB_PASSWORD", "WAREHOUSE_PASSWORD", "WAREHOUSE_PIPELINE_PASSWORD"}
STORAGE_MOUNT = "/opt/airflow/storage"
# What each healthcheck must run, as written in the compose file (``$$`` is a literal ``$``).
HEALTHCHECKS = {
    "postgres": "pg_isready",
    "warehouse": "pg_isready",
    "redis": "redis-cli ping",
    "events": "redis-cli ping",
    "airflow-apiserver": "curl --fail http://localhost:8080/api/v2/version",
    "airflow-scheduler": "curl --fail http://localhost:8974/health",
    "airflow-dag-processor": 'airflow jobs check --job-type DagProcessorJob --hostname "$${HOSTNAME}"',
    "airflow-triggerer": 'airflow jobs check --job-type TriggererJob --hostname "$${HOSTNAME}"',
    "airflow-worker": "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping "
    '-d "celery@$${HOSTNAME}"',
}

# Compose interpolation: ``$$`` (a literal ``$``), ``${VAR}``, ``${VAR<op><arg>}`` and ``$VAR``.
_REFERENCE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def _strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML document (keys are not interpolated)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _references(text: str) -> Iterator[tuple[str, str | None, str]]:
    """``(name, operator, argument)`` of each variable that ``text`` interpolates."""
    for match in _REFERENCE.finditer(text):
        if match.group(0) == "$$":
            continue
        name = match.group("name") or match.group("bare")
        yield name, match.group("op"), match.group("arg") or ""


def _needs_value(op: str | None) -> bool:
    """Whether a reference with this operator has no default, so the variable must be set."""
    return op in (None, ":?", "?")


def _interpolate(node: Any, env: dict[str, str]) -> Any:
    """What Docker Compose makes of the document with ``env`` as its ``.env`` file."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if empty else str(value)
        if op in (":?", "?") and empty:
            raise KeyError(f"{name}: {arg}")
        if op in (":+", "+"):
            return "" if empty else arg
        return value or ""

    return _REFERENCE.sub(substitute, node)


def _single_reference(value: str) -> tuple[str, str | None, str] | None:
    """The reference if ``value`` is exactly one ``${...}`` and nothing else."""
    match = _REFERENCE.fullmatch(value)
    if match is None or match.group(0) == "$$" or match.group("name") is None:
        return None
    return match.group("name"), match.group("op"), match.group("arg") or ""


def _url_password(value: str) -> str | None:
    """The password of a URL as written (references not resolved), None if the URL has no login."""
    if "://" not in value:
        return None
    userinfo, at, _ = value.split("://", 1)[1].rpartition("@")
    if not at:
        return None
    parts = re.split(r"(\$\{[^}]*\})", userinfo)  # odd items are references, which may hold ":"
    for index in range(0, len(parts), 2):
        if ":" in parts[index]:
            return parts[index].partition(":")[2] + "".join(parts[index + 1 :])
    return ""


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):  # short syntax: service_started
        return {name: {"condition": "service_started"} for name in deps}
    return dict(deps)


def _healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


def _volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source of a service's volumes in short syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mounts[target] = source
    return mounts


def _read_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _lock_pin(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert match, f"{name} is not pinned in requirements.lock"
    return match.group(1)


def _dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of each Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell line, split at ``&&``, ``||``, ``;`` and ``|``."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _run_commands() -> list[tuple[int, list[str]]]:
    """``(instruction index, command)`` of every command in the Dockerfile's RUN instructions."""
    return [
        (index, command)
        for index, (keyword, arguments) in enumerate(_dockerfile())
        if keyword == "RUN"
        for command in _shell_commands(arguments)
    ]


def _copies() -> list[tuple[int, list[str], str]]:
    """``(instruction index, sources, destination)`` of every COPY."""
    copies = []
    for index, (keyword, arguments) in enumerate(_dockerfile()):
        if keyword == "COPY":
            paths = [token for token in shlex.split(arguments) if not token.startswith("--")]
            copies.append((index, paths[:-1], paths[-1]))
    return copies


def _copied_paths() -> list[tuple[int, PurePosixPath]]:
    """``(instruction index, path in the image)`` of everything each COPY puts into the image."""
    paths = []
    for index, sources, dest in _copies():
        for source in sources:
            into_folder = dest.endswith("/") and not source.endswith("/")
            target = PurePosixPath(dest, PurePosixPath(source).name) if into_folder else PurePosixPath(dest)
            paths.append((index, target))
    return paths


def _makefile_install_command(words: tuple[str, ...]) -> list[str]:
    """The Makefile ``install`` recipe line that runs ``uv <words>``, as tokens after ``uv``."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        tokens = shlex.split(line) if line.startswith("\t") else []
        if tokens and tokens[0] == "$(BIN)/uv" and tuple(tokens[1 : 1 + len(words)]) == words:
            return tokens[1:]
    raise AssertionError(f"no `uv {' '.join(words)}` line in the Makefile")


def _uv_commands(words: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """Dockerfile commands ``python -m uv <words> ...``, as tokens after ``uv``."""
    return [
        (index, command[3:])
        for index, command in _run_commands()
        if command[:3] == ["python", "-m", "uv"] and tuple(command[3 : 3 + len(words)]) == words
    ]


def _flags_to_match(tokens: list[str]) -> set[str]:
    """Options of a Makefile uv line that the image must use too (not ``--quiet``, not the venv path)."""
    return {token for token in tokens if token.startswith("--") and token not in ("--quiet", "--python")}


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    document = yaml.safe_load(compose_text)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return _read_env_file((ROOT / ".env.example").read_text())


@pytest.fixture(scope="module")
def example_env(env_example: dict[str, str]) -> dict[str, str]:
    """``.env.example`` with a stand-in for each secret it leaves for the user to fill in."""
    return {name: value or f"example-{name.lower()}" for name, value in env_example.items()}


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any], example_env: dict[str, str]) -> dict[str, Any]:
    document = _interpolate(compose, example_env)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose_spec() -> dict[str, Any]:
    """The Compose Specification's JSON schema, as vendored by check-jsonschema."""
    try:
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        pytest.fail("check-jsonschema (pinned in requirements.lock) ships the Compose schema; `make install`")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"
    return dict(schema)


@pytest.mark.parametrize("document", ["compose", "resolved"], ids=["as written", "with .env.example"])
def test_compose_file_follows_the_compose_specification(
    document: str, compose_spec: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    """The file, before and after interpolation, validates against the official JSON schema."""
    validator = jsonschema.validators.validator_for(compose_spec)(compose_spec)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(request.getfixturevalue(document))
    ]
    assert errors == []


BREAKAGES = {
    "misspelt condition": (
        "airflow-scheduler",
        "depends_on",
        {"airflow-init": {"condition": "service_done"}},
    ),
    "unknown healthcheck key": ("redis", "healthcheck", {"command": "redis-cli ping"}),
    "interval as a number": ("postgres", "healthcheck", {"test": ["CMD", "true"], "interval": 10}),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_schema_check_rejects_a_broken_file(
    breakage: str, compose: dict[str, Any], compose_spec: dict[str, Any]
) -> None:
    """The validation above is real: the schema rejects each of these mistakes."""
    service, key, value = BREAKAGES[breakage]
    broken = copy.deepcopy(compose)
    broken["services"][service][key] = value
    validator = jsonschema.validators.validator_for(compose_spec)(compose_spec)
    paths = {tuple(error.absolute_path)[:3] for error in validator.iter_errors(broken)}
    assert ("services", service, key) in paths


def test_every_service_exists_and_has_a_healthcheck(services: dict[str, Any]) -> None:
    """All nine services are there and each one tells Compose whether it is healthy."""
    assert set(services) >= INFRA | AIRFLOW_SERVICES
    for name, service in services.items():
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), name
        assert healthcheck["test"] not in ("NONE", ["NONE"]), name
        assert _healthcheck_command(service).strip(), name


@pytest.mark.parametrize("name", sorted(HEALTHCHECKS))
def test_healthcheck_asks_the_service_itself(name: str, services: dict[str, Any]) -> None:
    """Each healthcheck runs the check that fits its service."""
    assert HEALTHCHECKS[name] in _healthcheck_command(services[name])


def test_scheduler_serves_the_health_endpoint_its_healthcheck_asks(services: dict[str, Any]) -> None:
    """``/health`` on :8974 only exists with the scheduler's health check server turned on."""
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_airflow_services_share_the_common_block(compose: dict[str, Any], services: dict[str, Any]) -> None:
    """Exactly the Airflow services are built from x-airflow-common: one image, one environment base."""
    common = compose["x-airflow-common"]
    assert common["build"]["context"] == "."
    assert common["build"]["dockerfile"] == "Dockerfile"
    using_common = {
        name
        for name, service in services.items()
        if service.get("build") == common["build"] and service.get("image") == common["image"]
    }
    assert using_common == AIRFLOW_SERVICES
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        if name == INIT:  # migrates and grants as the warehouse's owner; see the warehouse tests below
            env = {**env, "AIRFLOW_CONN_WAREHOUSE": common["environment"]["AIRFLOW_CONN_WAREHOUSE"]}
        assert env.items() >= common["environment"].items(), name
        assert services[name]["volumes"] == common["volumes"], name


@pytest.mark.parametrize(("name", "command"), sorted(AIRFLOW_COMMANDS.items()))
def test_airflow_service_runs_its_component(name: str, command: str, services: dict[str, Any]) -> None:
    """Each long-running service starts one Airflow component."""
    assert services[name]["command"] == command


def test_the_api_server_publishes_port_8080(services: dict[str, Any], resolved: dict[str, Any]) -> None:
    """The UI and REST API answer on the host's port 8080 (AIRFLOW_PORT) and nothing else is published."""
    assert services["airflow-apiserver"]["ports"] == ["${AIRFLOW_PORT:-8080}:8080"]
    assert resolved["services"]["airflow-apiserver"]["ports"] == ["8080:8080"]
    assert [name for name, service in services.items() if service.get("ports")] == ["airflow-apiserver"]


def test_every_airflow_service_has_the_same_secrets_from_env(services: dict[str, Any]) -> None:
    """One JWT secret, one Fernet key and one API secret key, each read from .env without a default."""
    for setting, variable in SHARED_SECRETS.items():
        values = {services[name]["environment"][setting] for name in AIRFLOW_SERVICES}
        assert len(values) == 1, f"{setting} differs between services: {values}"
        reference = _single_reference(values.pop())
        assert reference is not None, setting
        assert reference[:2] == (variable, ":?"), setting
    for name in INFRA:
        assert not set(SHARED_SECRETS) & set(services[name].get("environment", {})), name


def test_services_start_in_order(services: dict[str, Any]) -> None:
    """Airflow waits for healthy databases and broker; the components also wait for airflow-init."""
    for name, service in services.items():
        deps = _depends_on(service)
        for dep in INFRA & set(deps):
            assert deps[dep].get("condition") == "service_healthy", f"{name} -> {dep}"
        if name in AIRFLOW_SERVICES:
            assert set(deps) >= INFRA, name
        if name in INFRA | {INIT}:
            assert INIT not in deps, name
        else:
            assert deps[INIT].get("condition") == "service_completed_successfully", name
    for name in INFRA:
        assert not set(_depends_on(services[name])) & AIRFLOW_SERVICES, name


def test_celery_executor_with_redis_and_the_metadata_db(resolved: dict[str, Any]) -> None:
    """Every Airflow service runs the CeleryExecutor; results go to the metadata PostgreSQL."""
    services = resolved["services"]
    postgres = services["postgres"]["environment"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0", name
        for setting, scheme in (
            ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2"),
            ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql"),
        ):
            url = urlsplit(env[setting])
            assert url.scheme == scheme, setting
            assert (url.hostname, url.port) == ("postgres", 5432), setting
            assert (url.username, url.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
            assert url.path == f"/{postgres['POSTGRES_DB']}", setting


def test_warehouse_is_its_own_database_behind_the_warehouse_connection(
    resolved: dict[str, Any], example_env: dict[str, str]
) -> None:
    """AIRFLOW_CONN_WAREHOUSE points at the warehouse service and its database: in airflow-init as the
    owner (POSTGRES_USER, who migrates), in every other service as the pipeline role."""
    services = resolved["services"]
    warehouse = services["warehouse"]
    assert warehouse["image"] == services["postgres"]["image"] == "postgres:16"
    env = warehouse["environment"]
    pipeline = (example_env["WAREHOUSE_PIPELINE_USER"], example_env["WAREHOUSE_PIPELINE_PASSWORD"])
    for name in AIRFLOW_SERVICES:
        url = urlsplit(services[name]["environment"]["AIRFLOW_CONN_WAREHOUSE"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "warehouse", 5432)
        login = (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) if name == INIT else pipeline
        assert (url.username, url.password) == login, name
        assert url.path == f"/{env['POSTGRES_DB']}"
    assert env["POSTGRES_USER"] != services["postgres"]["environment"]["POSTGRES_USER"]
    assert pipeline[0] != env["POSTGRES_USER"] and pipeline[1] != env["POSTGRES_PASSWORD"]


def test_only_airflow_init_can_log_in_as_the_warehouse_owner(
    resolved: dict[str, Any], example_env: dict[str, str]
) -> None:
    """The DAGs run in the long-running services: none of them holds the owner's password."""
    owner_password = example_env["WAREHOUSE_PASSWORD"]
    for name, service in resolved["services"].items():
        holds = any(owner_password in value for value in _strings(service.get("environment", {})))
        assert holds == (name in {INIT, "warehouse"}), name


def test_the_pipeline_role_is_a_valid_name_apart_from_the_owner(env_example: dict[str, str]) -> None:
    """airflow-init's grant-pipeline-role takes the name as it is in .env.example."""
    from etlml.warehouse.roles import ROLE_NAME

    role = env_example["WAREHOUSE_PIPELINE_USER"]
    assert ROLE_NAME.fullmatch(role) and not role.startswith("pg_")
    assert role != env_example["WAREHOUSE_USER"]


def test_the_event_stream_is_its_own_persistent_redis_behind_the_events_connection(
    resolved: dict[str, Any], compose: dict[str, Any]
) -> None:
    """AIRFLOW_CONN_EVENTS points at the events service, never the Celery broker; it keeps an
    append-only file on a named volume, so the stream outlives a restart."""
    services = resolved["services"]
    events = services["events"]
    command = events["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert _volume_mounts(events)["/data"] in compose["volumes"]
    assert command[command.index("--dir") + 1] == "/data"
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        url = urlsplit(env["AIRFLOW_CONN_EVENTS"])
        assert (url.scheme, url.hostname, url.port) == ("redis", "events", 6379), name
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis" != url.hostname
        assert _depends_on(services[name])["events"]["condition"] == "service_healthy", name


def test_databases_keep_their_data_on_their_own_named_volumes(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    """Metadata and warehouse data survive ``docker compose down`` on two separate named volumes."""
    data = {
        name: _volume_mounts(services[name])["/var/lib/postgresql/data"] for name in ("postgres", "warehouse")
    }
    assert data["postgres"] != data["warehouse"]
    assert set(data.values()) <= set(compose["volumes"])


def test_storage_volume_is_mounted_in_every_airflow_service(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    """By default every Airflow service sees the same intermediate files on the etlml-storage volume."""
    assert "etlml-storage" in compose["volumes"]
    for name in AIRFLOW_SERVICES:
        assert _volume_mounts(services[name]).get(STORAGE_MOUNT) == "etlml-storage", name
        storage_root = services[name]["environment"]["ETLML_STORAGE_ROOT"]
        assert _single_reference(storage_root) == ("ETLML_STORAGE_ROOT", ":-", f"file://{STORAGE_MOUNT}")
    # The image creates the mount point, owned by airflow, so a new volume starts out writable.
    assert any(
        keyword == "RUN" and STORAGE_MOUNT in arguments.split() for keyword, arguments in _dockerfile()
    )


def test_airflow_settings_of_the_deployment(services: dict[str, Any]) -> None:
    """No example DAGs, new DAGs paused, tasks reach the execution API on the API server."""
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "true", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert _single_reference(env["AIRFLOW__API__BASE_URL"]) == (
            "AIRFLOW_BASE_URL",
            ":-",
            "http://localhost:8080",
        )


def test_init_migrates_both_databases_then_writes_the_login(services: dict[str, Any]) -> None:
    """airflow-init stops at the first error, migrates Airflow then the warehouse, then writes the login."""
    init = services[INIT]
    assert init["entrypoint"] == "/bin/bash"
    assert init["command"][0] == "-c"
    script = init["command"][1]
    lines = [line.strip() for line in script.splitlines() if line.strip()]
    assert lines[0] == "set -euo pipefail"
    migrate_airflow = next(i for i, line in enumerate(lines) if line.endswith("airflow db migrate"))
    migrate_warehouse = lines.index("etlml db migrate")
    # then, after every migration, the pipeline role's grants; its password on stdin, not in argv
    grants = lines.index(
        """printf '%s\\n' "$${WAREHOUSE_PIPELINE_PASSWORD}" | """
        """etlml db grant-pipeline-role "$${WAREHOUSE_PIPELINE_USER}" --password-stdin"""
    )
    writes_login = next(i for i, line in enumerate(lines) if "_AIRFLOW_WWW_USER_PASSWORD" in line)
    assert migrate_airflow < migrate_warehouse < grants < writes_login
    env = init["environment"]
    for variable in ("WAREHOUSE_PIPELINE_USER", "WAREHOUSE_PIPELINE_PASSWORD"):
        reference = _single_reference(env[variable])
        assert reference is not None and reference[:2] == (variable, ":?"), variable
    assert '> "$${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"' in script
    assert "restart" not in init
    # The healthcheck looks for the marker the script writes last.
    marker = init["healthcheck"]["test"][-1]
    assert lines[-1] == f"touch {marker}"


def test_the_login_file_reaches_the_api_server(services: dict[str, Any]) -> None:
    """The SimpleAuthManager reads the passwords file that airflow-init writes, on a shared volume."""
    env = services["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "${_AIRFLOW_WWW_USER_USERNAME:-admin}:admin"
    passwords = PurePosixPath(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    volume = _volume_mounts(services["airflow-apiserver"])[str(passwords.parent)]
    assert _volume_mounts(services[INIT])[str(passwords.parent)] == volume
    init_env = services[INIT]["environment"]
    assert _single_reference(init_env["_AIRFLOW_WWW_USER_USERNAME"]) == (
        "_AIRFLOW_WWW_USER_USERNAME",
        ":-",
        "admin",
    )
    password = _single_reference(init_env["_AIRFLOW_WWW_USER_PASSWORD"])
    assert password is not None
    assert password[:2] == ("_AIRFLOW_WWW_USER_PASSWORD", ":?")
    for name in AIRFLOW_COMMANDS:
        assert "_AIRFLOW_WWW_USER_PASSWORD" not in services[name]["environment"], name


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any], compose_text: str) -> None:
    """Secrets and passwords are references to .env without a default; no key-like string is inline."""
    environments = [compose["x-airflow-common"]["environment"]] + [
        service.get("environment", {}) for service in compose["services"].values()
    ]
    for env in environments:
        for key, value in env.items():
            if re.search(r"(SECRET|SECRET_KEY|FERNET_KEY|PASSWORD)$", key):
                reference = _single_reference(value)
                assert reference is not None, f"{key} is not read from .env"
                assert _needs_value(reference[1]), f"{key} has a default in the compose file"
            password = _url_password(str(value))
            if password:
                reference = _single_reference(password)
                assert reference is not None, f"{key} has a password in the URL that is not read from .env"
                assert _needs_value(reference[1]), f"{key}: URL password with a default"
    # Fernet keys are 44 characters of urlsafe base64; token_urlsafe(32) gives 43. Mixed-case with digits
    # tells them from setting names such as AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE.
    for token in re.findall(r"[A-Za-z0-9_\-]{32,}={0,2}", compose_text):
        looks_random = all(re.search(chars, token) for chars in ("[a-z]", "[A-Z]", "[0-9]"))
        assert not looks_random, f"secret-looking value in docker-compose.yml: {token}"


def test_env_example_defines_every_variable_the_compose_file_needs(
    compose: dict[str, Any], env_example: dict[str, str], example_env: dict[str, str]
) -> None:
    """Each ``${VAR}`` without a default is in .env.example, and .env.example has nothing unused."""
    references = [ref for text in _strings(compose) for ref in _references(text)]
    required = {name for name, op, _ in references if _needs_value(op)}
    assert required
    assert required <= set(env_example)
    assert set(env_example) <= {name for name, _, _ in references}
    _interpolate(compose, example_env)  # raises on any `${VAR:?...}` left unset


def test_env_example_leaves_the_secrets_to_the_user(env_example: dict[str, str]) -> None:
    """No shared example secret: each is empty, with the command that generates one beside it."""
    for variable in {*SHARED_SECRETS.values(), *PASSWORDS}:
        assert env_example[variable] == "", variable
    text = (ROOT / ".env.example").read_text()
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in text
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in text
    assert env_example["AIRFLOW_UID"] == "50000"
    # No default login password: compose refuses to start without one, compose_env.py generates it.
    login = (env_example["_AIRFLOW_WWW_USER_USERNAME"], env_example["_AIRFLOW_WWW_USER_PASSWORD"])
    assert login == ("admin", "")
    assert "scripts/compose_env.py" in text


def test_env_file_stays_out_of_git_and_of_the_image() -> None:
    """``.env`` holds the real secrets: git ignores it, the Docker build context leaves it out."""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    example = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, check=False)
    assert (ignored.returncode, example.returncode) == (0, 1)
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_dockerignore_keeps_local_state_out_but_not_what_the_image_copies() -> None:
    """The venv, git, caches and run output are not sent to the builder; the COPY sources are."""
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    patterns.discard("")
    expected = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".demo"}
    assert expected <= patterns
    assert {"**/__pycache__", "bench/out", "test-output"} <= patterns
    for _, sources, _ in _copies():
        for source in sources:
            top = source.rstrip("/").split("/")[0]
            assert top not in patterns, f"{source} is copied but ignored"
            assert (ROOT / source).exists(), f"{source} is copied but missing"


# Debian release -> the Python 3 it ships (python3 of the release's own packages)
DEBIAN_PYTHON = {"bookworm": "3.11"}


def test_image_is_debian_whose_python_the_project_requires() -> None:
    """The one base image is a Debian release (no image only Docker Hub has) whose Python pyproject.toml
    accepts and the lock is resolved for; Airflow comes from the lock. tests/compose runs the built image
    and checks both versions there."""
    bases = [arguments for keyword, arguments in _dockerfile() if keyword == "FROM"]
    assert len(bases) == 1
    match = re.fullmatch(r"debian:(?P<release>[a-z]+)-slim", bases[0])
    assert match, bases[0]
    python = DEBIAN_PYTHON[match["release"]]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{python}.0")
    assert f"--python-version {python} " in (ROOT / "Makefile").read_text()
    assert any(
        "python3 python3-venv" in arguments for keyword, arguments in _dockerfile() if keyword == "RUN"
    )


def test_image_installs_uv_at_the_locked_version() -> None:
    """uv comes from requirements.lock, read the way the Makefile reads it, before it is used."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^UV_VERSION := \$\(shell (?P<command>.+)\)$", makefile, re.M)
    assert match, "the Makefile no longer reads UV_VERSION from requirements.lock"
    command = match["command"]
    read = subprocess.run(["sh", "-c", command], cwd=ROOT, capture_output=True, text=True, check=True)
    assert read.stdout.strip() == _lock_pin("uv")

    copy_lock = [(index, dest) for index, sources, dest in _copies() if sources == ["requirements.lock"]]
    assert len(copy_lock) == 1
    copy_index, lock_path = copy_lock[0]
    installs = [
        (index, cmd)
        for index, cmd in _run_commands()
        if cmd[:4] == ["python", "-m", "pip", "install"] and any(t.startswith("uv==") for t in cmd)
    ]
    assert len(installs) == 1
    index, install = installs[0]
    assert f"uv==$({command})" in install
    # It runs after the COPY, in the folder of the copied lock (the command reads a relative path) ...
    assert index > copy_index
    assert _shell_commands(_dockerfile()[index][1])[0] == ["cd", str(PurePosixPath(lock_path).parent)]
    # ... and before the uv it installs is used.
    assert index <= min(i for i, _ in _uv_commands(("pip",)))


def test_image_syncs_the_lock_like_make_install() -> None:
    """``uv pip sync`` of requirements.lock with the Makefile's options (bytecode compiled)."""
    makefile_sync = _makefile_install_command(("pip", "sync"))
    syncs = _uv_commands(("pip", "sync"))
    assert len(syncs) == 1
    _, sync = syncs[0]
    assert "--compile-bytecode" in makefile_sync
    assert _flags_to_match(makefile_sync) <= set(sync)
    assert sync[-1] == makefile_sync[-1] == "requirements.lock"
    assert sync[sync.index("--python") + 1] == "$(command -v python)"


def test_image_installs_the_package_without_dependencies() -> None:
    """The package goes in like ``make install`` does (``--no-deps``), but not editable."""
    makefile_install = _makefile_install_command(("pip", "install"))
    installs = _uv_commands(("pip", "install"))
    assert len(installs) == 1
    index, install = installs[0]
    assert "--no-deps" in makefile_install
    assert _flags_to_match(makefile_install) - {"--editable"} <= set(install)
    assert not {"--editable", "-e"} & set(install)
    package_dir = PurePosixPath(install[-1])
    copied = {path for i, path in _copied_paths() if i < index}
    for needed in ("pyproject.toml", "README.md", "src"):
        assert package_dir / needed in copied, needed
    assert index > _uv_commands(("pip", "sync"))[0][0]


def test_image_bakes_in_the_dags() -> None:
    """The DAG files are in the image at Airflow's default DAGs folder."""
    assert any(sources == ["dags/"] and dest == "/opt/airflow/dags/" for _, sources, dest in _copies())


def test_image_installs_as_the_airflow_user() -> None:
    """Every install runs as ``airflow`` (official guidance), and so do the containers."""
    user = None
    for keyword, arguments in _dockerfile():
        if keyword == "USER":
            user = arguments
        if keyword == "RUN" and re.search(r"\bpip\b", arguments):
            assert user == "airflow", arguments
    assert user == "airflow"


@pytest.mark.parametrize("path", ["Dockerfile", "docker-compose.yml", ".env.example"])
def test_no_runtime_pip_installs_and_no_pickle(path: str) -> None:
    """Dependencies come from the image build only, and nothing turns on pickling."""
    text = (ROOT / path).read_text()
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in text
    assert "pickl" not in text.lower()


def test_the_image_ships_the_package_and_the_dags_not_the_dev_tooling() -> None:
    """The demo's local stack (admin/admin, process control), the tests and the benchmark stay out."""
    sources = {source.rstrip("/") for _, copied, _ in _copies() for source in copied}
    assert sources == {
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "src",
        "dags",
        "docker/entrypoint.sh",
    }
    shipped = [p.relative_to(ROOT).as_posix() for p in (ROOT / "src").rglob("*.py")]
    assert not [p for p in shipped if "localstack" in p or p.startswith("src/scripts")]


# ---- docker-compose.workers.yml: two workers that share no disk (run for real by tests/compose)


@pytest.fixture(scope="module")
def workers() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.workers.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_the_workers_file_follows_the_compose_specification(
    workers: dict[str, Any], compose_spec: dict[str, Any]
) -> None:
    validator = jsonschema.validators.validator_for(compose_spec)(compose_spec)
    assert [error.message for error in validator.iter_errors(workers)] == []


def test_every_airflow_service_keeps_intermediates_and_logs_on_s3(
    workers: dict[str, Any], services: dict[str, Any]
) -> None:
    """Each Airflow service of docker-compose.yml gets the S3 storage root and remote logging."""
    for name in AIRFLOW_SERVICES:
        env = workers["services"][name]["environment"]
        assert env["ETLML_STORAGE_ROOT"].startswith("s3://aws_default@"), name
        assert env["ETLML_LANDING_ROOT"].startswith("s3://aws_default@"), name
        assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "true", name
        assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].startswith("s3://"), name
    assert set(workers["services"]) - {"s3", "s3-bucket"} <= set(services)


def test_the_workers_share_no_volume(workers: dict[str, Any], services: dict[str, Any]) -> None:
    """Every mount a worker has in docker-compose.yml is replaced by a volume of each replica's own
    (anonymous: no source), so nothing a worker writes on disk reaches another."""
    worker = workers["services"]["airflow-worker"]
    assert worker["scale"] >= 2
    base_targets = set(_volume_mounts(services["airflow-worker"]))
    assert base_targets, "the worker mounts nothing in docker-compose.yml"
    assert sorted(worker["volumes"]) == sorted(base_targets)  # a target alone: an anonymous volume


def test_the_aws_connection_comes_from_env(workers: dict[str, Any]) -> None:
    env = workers["x-s3-env"]
    assert _single_reference(env["AIRFLOW_CONN_AWS_DEFAULT"])[:2] == ("AIRFLOW_CONN_AWS_DEFAULT", ":?")
