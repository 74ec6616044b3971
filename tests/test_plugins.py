"""What a user adds or sets reaches the run: a farm of their own, a model from --config-dir in co-location,
and settings given on the command line over those in the environment."""

import http.server
import threading

from conftest import PLUGINS, assert_one_line_error, results, write_user_backend, write_user_model


def _reverse_farm(conf_dir, order_file):
    """conf_dir/farm/reverse.yaml: the user's farm of tests/plugins/reverse_farm.py (one module, one YAML)."""
    (conf_dir / "farm").mkdir(parents=True, exist_ok=True)
    (conf_dir / "farm" / "reverse.yaml").write_text(
        f"_target_: reverse_farm.ReverseFarm\nname: reverse\norder_file: {order_file}\ndirection: backwards\n")


def test_a_farm_of_ones_own_is_one_module_and_one_yaml(run_cli, tmp_path):
    conf, order = tmp_path / "my_conf", tmp_path / "order.txt"
    _reverse_farm(conf, order)
    write_user_backend(conf, "fixed_step", "fixed_step_backend.FixedStep")
    result = run_cli("-m", "--config-dir", str(conf), "farm=reverse", "backend=fixed_step", "model=squeezenet1_1",
                     "protocol=quick", "protocol.profile_iterations=0", "batch=1,2,3", PYTHONPATH=PLUGINS)
    assert result.returncode == 0, result.output
    assert order.read_text().split() == ["2", "1", "0"]  # the farm ran them, its own way
    records = results(tmp_path, "outputs/sweeps/*/*/result.json")
    assert sorted(record["params"]["batch"] for record in records) == ["1", "2", "3"]
    assert {record["tags"]["embench.farm"] for record in records} == {"reverse"}
    assert "3 job(s) run, 0 failed" in result.output


def test_a_farm_option_is_checked_by_what_the_farm_declares(run_cli, tmp_path):
    conf = tmp_path / "my_conf"
    _reverse_farm(conf, tmp_path / "order.txt")
    result = run_cli("-m", "--config-dir", str(conf), "farm=reverse", "farm.direction=sideways", PYTHONPATH=PLUGINS)
    assert_one_line_error(result, "farm.direction='sideways' (farm=reverse) is not valid", "backwards, forwards")
    result = run_cli("-m", "--config-dir", str(conf), "farm=reverse", "+farm.speed=2", PYTHONPATH=PLUGINS)
    assert_one_line_error(result, "farm.speed", "farm=reverse has no such option", "name, order_file, direction")
    assert not (tmp_path / "order.txt").exists()


def test_a_model_from_config_dir_can_be_co_located(run_cli, tmp_path):
    """The co-located networks are looked up on the run's search path, --config-dir included, and the
    process that measures them gets their configs (not embench's conf/ alone)."""
    conf = tmp_path / "my_conf"
    write_user_model(conf, "my_squeeze", "torchvision.models.squeezenet1_1", num_classes=10)
    result = run_cli("--config-dir", str(conf), "colocate=[squeezenet1_1,my_squeeze]", "colocate_threads=[1,1]",
                     "protocol=quick", "scenario=single_stream")
    assert result.returncode == 0, result.output
    [record] = results(tmp_path, "outputs/runs/*/result.json")
    assert record["params"]["colocated_models.my_squeeze.factory.num_classes"] == "10"
    assert record["params"]["colocated_models.my_squeeze.input_size"] == "64"  # the user's file, not a namesake
    for name in ("squeezenet1_1", "my_squeeze"):
        assert record["metrics"][f"colocated.{name}.together.query_latency_p50_ms"] > 0
        assert record["metrics"][f"colocated.{name}.output_max_rel_diff"] < 1e-2


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """A tracking server that answers every request 503 (which MLflow retries), counting the requests."""

    requests = 0

    def _answer(self):
        type(self).requests += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def _requests_to_a_down_server(run_cli, tmp_path, *args, **env) -> int:
    """How many HTTP requests one run sends to a server that is down: 1 + the retries MLflow was told to make."""
    _Unavailable.requests = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_user_backend(tmp_path / "my_conf", "fixed_step", "fixed_step_backend.FixedStep")
        result = run_cli("--config-dir", str(tmp_path / "my_conf"), "backend=fixed_step", "model=squeezenet1_1",
                         "protocol=quick", "protocol.profile_iterations=0", *args, PYTHONPATH=PLUGINS,
                         MLFLOW_TRACKING_URI=f"http://127.0.0.1:{server.server_address[1]}",
                         MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0", **env)
    finally:
        server.shutdown()
    assert result.returncode == 3, result.output  # measured, kept on disk, MLflow unreachable
    return _Unavailable.requests


def test_the_command_line_beats_the_environment_which_beats_the_default(run_cli, tmp_path):
    """config.yaml's promise for tracking.http_max_retries: MLflow's own variable is a default that an
    override beats. The server counts the requests, an independent record of the retries made."""
    assert _requests_to_a_down_server(run_cli, tmp_path, "tracking.http_max_retries=1",
                                      MLFLOW_HTTP_REQUEST_MAX_RETRIES="4") == 2
    assert _requests_to_a_down_server(run_cli, tmp_path, MLFLOW_HTTP_REQUEST_MAX_RETRIES="3") == 4
    assert _requests_to_a_down_server(run_cli, tmp_path) == 3  # config.yaml's default: 2 retries
