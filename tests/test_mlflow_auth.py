"""A team's tracking server behind MLflow's basic auth (`mlflow server --app-name basic-auth`, on loopback): the right
credentials log every run of a sweep; a wrong password, no credentials, or a user who may only read the experiment are
one line naming the server and what to set, before anything is measured, or with the measured result kept for
`embench sync`; no password reaches any output or file."""

import base64
import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import JOB_RESULTS, MlflowServer, assert_one_line_error, only_result, results, runs_of

pytestmark = pytest.mark.slow

ADMIN, ADMIN_PASSWORD = "admin", "admin-pass-4711-x"  # MLflow wants 12 characters or more
ALICE, ALICE_PASSWORD = "alice", "alice-pass-0815-y"  # logs to the team's experiment, which she created
BOB, BOB_PASSWORD = "bob", "bob-pass-2342-zz"  # may only read it (default_permission = READ)
WRONG_PASSWORD = "wrong-pass-9999-q"
QUICK = ("model=squeezenet1_1", "protocol=quick", "protocol.profile_iterations=0")
VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def _call(server: MlflowServer, endpoint: str, body: dict, user: str | None, password: str | None):
    """One REST call to the server as `user` (none: no Authorization header); returns (HTTP status, body)."""
    request = urllib.request.Request(f"{server.url}/api/2.0/mlflow/{endpoint}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server as the docs set it up: its own auth config and user store, the admin's password, two users, and
    the team's experiment `embench` created by alice."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    config = root / "basic_auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'users.db'}\n"
                      f"admin_username = {ADMIN}\nadmin_password = {ADMIN_PASSWORD}\nauth_cache_ttl_seconds = 60\n")
    server = MlflowServer(root, args=("--app-name", "basic-auth"), env={
        "MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-key-for-this-test-only"}).start()
    try:
        for user, password in ((ALICE, ALICE_PASSWORD), (BOB, BOB_PASSWORD)):
            assert _call(server, "users/create", {"username": user, "password": password}, ADMIN, ADMIN_PASSWORD)[0] == 200
        assert _call(server, "experiments/create", {"name": "embench"}, ALICE, ALICE_PASSWORD)[0] == 200
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def client_as(server: MlflowServer, user: str, password: str):
    """An MlflowClient of the server that sends `user`'s credentials."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", user)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        yield server.client()


def as_user(user: str | None, password: str | None) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password} if user else {}


def assert_secret_nowhere(secret: str, output: str, *trees: Path) -> None:
    assert secret not in output
    for tree in trees:
        for path in tree.rglob("*"):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def assert_logged_as_measured(run, record: dict) -> None:
    """The run in the store is FINISHED with the very figures of the result.json it was measured into."""
    assert run.info.status == "FINISHED"
    assert run.data.metrics == pytest.approx(record["metrics"])


def test_the_server_is_locked(server):
    """Without credentials, or with a wrong password, the server answers nothing but 401."""
    for user, password in ((None, None), (ALICE, WRONG_PASSWORD)):
        status, body = _call(server, "experiments/search", {"max_results": 10}, user, password)
        assert status == 401, body
    status, body = _call(server, "experiments/search", {"max_results": 10}, ALICE, ALICE_PASSWORD)
    assert status == 200 and "embench" in {experiment["name"] for experiment in body["experiments"]}, body


def test_right_credentials_log_every_run(server, run_cli, tmp_path):
    result = run_cli("-m", *QUICK, "batch=1,2", f"tracking.uri={server.url}", **as_user(ALICE, ALICE_PASSWORD))
    assert result.returncode == 0, result.output
    records = {record["run_uid"]: record for record in results(tmp_path, JOB_RESULTS)}
    assert len(records) == 2
    with client_as(server, ALICE, ALICE_PASSWORD) as client:
        runs = runs_of(client)
    jobs = [run for run in runs if run.data.tags.get("embench.run_uid") in records]
    assert sorted(run.data.params["batch"] for run in jobs) == ["1", "2"]
    for run in jobs:
        assert_logged_as_measured(run, records[run.data.tags["embench.run_uid"]])
    [parent_id] = {run.data.tags["mlflow.parentRunId"] for run in jobs}
    [parent] = [run for run in runs if run.info.run_id == parent_id]
    assert parent.info.status == "FINISHED"
    assert_secret_nowhere(ALICE_PASSWORD, result.output, tmp_path, server.root / "artifacts")


@pytest.mark.parametrize("user, password, needles", [
    (ALICE, WRONG_PASSWORD, (f"refused user {ALICE!r}", "HTTP 401", *VARIABLES)),
    (None, None, ("none was given", "HTTP 401", *VARIABLES)),
], ids=["wrong password", "no credentials"])
def test_refused_credentials_stop_before_measuring(server, run_cli, tmp_path, user, password, needles):
    with client_as(server, ADMIN, ADMIN_PASSWORD) as client:
        before = len(runs_of(client))
    # HOME: no ~/.mlflow/credentials of the user running the tests can stand in
    result = run_cli("-m", *QUICK, "batch=1,2", f"tracking.uri={server.url}", HOME=str(tmp_path), **as_user(user, password))
    assert result.returncode == 2
    assert_one_line_error(result, f"MLflow at {server.url} ", *needles)
    assert "measuring" not in result.output and not results(tmp_path)  # refused before anything was measured
    with client_as(server, ADMIN, ADMIN_PASSWORD) as client:
        assert len(runs_of(client)) == before
    if password:
        assert_secret_nowhere(password, result.output, tmp_path)


def test_a_reader_is_refused_and_loses_nothing(server, run_cli, tmp_path):
    """bob may read the team's experiment, not write to it: a sweep stops before measuring; a single run, whose
    first write comes after its measurement, keeps its folder, which `embench sync` then uploads as alice."""
    needles = (f"MLflow at {server.url} ", f"does not let user {BOB!r}", "experiment 'embench'", "HTTP 403", "EDIT")
    sweep = run_cli("-m", *QUICK, "batch=1,2", f"tracking.uri={server.url}", **as_user(BOB, BOB_PASSWORD))
    assert sweep.returncode == 2
    assert_one_line_error(sweep, *needles)
    assert not results(tmp_path)

    single = run_cli(*QUICK, f"tracking.uri={server.url}", **as_user(BOB, BOB_PASSWORD))
    assert single.returncode == 3
    assert_one_line_error(single, *needles, "embench sync")
    record = only_result(tmp_path)
    folder = next(tmp_path.glob("outputs/runs/*"))
    synced = run_cli("sync", str(folder), "--tracking-uri", server.url, **as_user(ALICE, ALICE_PASSWORD))
    assert synced.returncode == 0, synced.output
    with client_as(server, ALICE, ALICE_PASSWORD) as client:
        [run] = [run for run in runs_of(client) if run.data.tags.get("embench.run_uid") == record["run_uid"]]
    assert_logged_as_measured(run, record)
    assert_secret_nowhere(BOB_PASSWORD, sweep.output + single.output, tmp_path)
    assert_secret_nowhere(ALICE_PASSWORD, synced.output, tmp_path)
