"""Every bad input: one `embench: error:` line naming the value, exit 2, no traceback, nothing measured or logged."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import cli_env, runs_of

# (command-line arguments, words the error line must contain)
CORPUS = [
    (["batch=0"], ["batch=0", "positive integer"]),
    (["batch=-3"], ["batch=-3", "positive integer"]),
    (["batch=two"], ["batch='two'", "positive integer"]),
    (["batch=1.5"], ["batch=1.5", "positive integer"]),
    (["batch=true"], ["batch=True", "positive integer"]),
    (["batch="], ["batch=''", "positive integer"]),
    (["+bacth=8"], ["bacth", "did you mean batch"]),
    (["++bacth=8"], ["bacth", "did you mean batch"]),
    (["+protocol.min_iteration=5"], ["protocol.min_iteration", "did you mean protocol.min_iterations"]),
    (["+platform.thread=2"], ["platform.thread", "did you mean platform.threads"]),
    (["+tracking.enable=false"], ["tracking.enable", "did you mean tracking.enabled"]),
    (["+model.foo=1"], ["model.foo", "model.factory.*"]),
    (["model.foo=1"], ["model.foo is not a setting of this config", "+model.foo="]),
    (["backend.runtime.dtype=bf16"], ["backend.runtime.dtype", "it is now backend.runtime.precision"]),
    (["+backend.runtime.foo=1"], ["backend=torch", "unexpected keyword argument 'foo'"]),
    (["model.factory._target_=torchvision.models.no_such_net"], ["model resnet18", "torchvision.models.no_such_net"]),
    (["seed=abc"], ["seed='abc'", "integer"]),
    (["seed=-1"], ["seed=-1", "integer from 0"]),
    (["seed=1.5"], ["seed=1.5", "integer"]),
    (["model.input_size=-5"], ["model.input_size=-5", "positive integer"]),
    (["model.input_size=0"], ["model.input_size=0", "positive integer"]),
    (["model.input_size=big"], ["model.input_size='big'", "positive integer"]),
    (["model.pretrained=maybe"], ["model.pretrained='maybe'", "true or false"]),
    (["platform.threads=999"], ["platform.threads=999", "logical CPUs"]),
    (["platform.threads=0"], ["platform.threads=0", "positive integer"]),
    (["platform.threads=-2"], ["platform.threads=-2", "positive integer"]),
    (["platform.threads=two"], ["platform.threads='two'", "positive integer"]),
    (["platform.strict=nope"], ["platform.strict='nope'", "true or false"]),
    (["platform=xavier"], ["platform=xavier", "this host lacks", "platform.strict=false"]),
    (["tracking.enabled=no"], ["tracking.enabled='no'", "true or false"]),
    (["tracking.enabled=1"], ["tracking.enabled=1", "true or false"]),
    (["tracking.experiment=''"], ["tracking.experiment=''", "non-empty"]),
    (["tracking.uri=foo://bar"], ["tracking.uri='foo://bar'", "not a store MLflow can use"]),
    (["tracking.uri=sqlite://relative.db"], ["tracking.uri='sqlite://relative.db'", "Valid SQLite URL forms"]),
    (["tracking.http_timeout_s=2.5"], ["tracking.http_timeout_s=2.5", "positive integer (whole seconds)"]),
    (["tracking.http_max_retries=-1"], ["tracking.http_max_retries=-1", "integer from 0"]),
    (["protocol.max_duration_s=inf"], ["protocol.max_duration_s=inf", "finite number > 0"]),
    (["protocol.max_duration_s=nan"], ["protocol.max_duration_s=nan", "finite number > 0"]),
    (["protocol.max_duration_s=0"], ["protocol.max_duration_s=0", "> 0"]),
    (["protocol.min_duration_s=-1"], ["protocol.min_duration_s=-1", ">= 0"]),
    (["protocol.unstable_cv=abc"], ["protocol.unstable_cv='abc'", "finite number"]),
    (["protocol.min_iterations=0"], ["protocol.min_iterations=0", "integer from 1"]),
    (["protocol.max_iterations=2"], ["protocol.max_iterations=2", "below protocol.min_iterations=3"]),
    (["protocol.warmup_iterations=-1"], ["protocol.warmup_iterations=-1", "integer from 0"]),
    (["protocol.mode=fast"], ["protocol.mode='fast'", "latency, throughput"]),
    (["protocol.headline=mean"], ["protocol.headline='mean'", "valid: median, min"]),
    (["protocol.mode=throughput", "protocol.headline=min"], ["protocol.headline=min", "needs protocol.mode=latency"]),
    (["backend=openvino", "backend.runtime.streams=-5"], ["backend.runtime.streams=-5", "null"]),
    (["backend=openvino", "backend.runtime.requests=0"], ["backend.runtime.requests=0", "1 to 1024"]),
    (["backend=openvino", "backend.runtime.hint=fastest"], ["backend.runtime.hint='fastest'", "latency, throughput"]),
    (["backend=openvino", "backend.runtime.precision=int4"], ["backend.runtime.precision='int4'", "fp32, bf16, fp16, int8"]),
    (["backend=openvino", "backend.runtime.calibration_samples=0"], ["backend.runtime.calibration_samples=0", "from 1"]),
    (["backend=onnxruntime", "backend.runtime.precision=int4"], ["backend.runtime.precision='int4'", "fp32, int8"]),
    (["backend=onnxruntime", "backend.runtime.graph_optimization=max"], ["graph_optimization='max'", "extended"]),
    (["backend=onnxruntime", "backend.runtime.execution_provider=coreml"], ["execution_provider='coreml'", "tensorrt"]),
    (["backend=onnxruntime", "backend.runtime.calibration_seed=x"], ["backend.runtime.calibration_seed='x'", "integer from 0"]),
    (["backend=executorch", "backend.runtime.precision=fp16"], ["backend.runtime.precision='fp16'", "fp32, int8"]),
    (["backend.runtime.precision=fp64"], ["backend.runtime.precision='fp64'", "fp32"]),
    (["backend.runtime.channels_last=yes"], ["backend.runtime.channels_last='yes'", "true or false"]),
    (["backend.runtime.tf32=sometimes"], ["backend.runtime.tf32='sometimes'", "true or false"]),
    (["backend=torch_compile", "backend.runtime.mode=turbo"], ["backend.runtime.mode='turbo'", "reduce-overhead"]),
    (["resume=maybe"], ["resume='maybe'", "true or false"]),
    (["model=nonesuch"], ["Could not find 'model/nonesuch'"]),
    (["experiment=nonesuch"], ["Could not find 'experiment/nonesuch'"]),
    (["-m", "model=resnet18,resnt18"], ["Could not find 'model/resnt18'"]),
    (["-m", "batch=1,0"], ["batch=0", "positive integer"]),
    (["-m", "model=squeezenet1_1", "platform=cpu,xavier"], ["platform=xavier", "this host lacks"]),
    (["-m", "tracking.experiment=a,b"], ["tracking.* differs between the jobs"]),
    (["scenario=bogus"], ["Could not find 'scenario/bogus'"]),
    (["scenario=server", "scenario.target_qps=0"], ["scenario.target_qps=0", "> 0"]),
    (["scenario=server", "scenario.latency_bound_ms=-1"], ["scenario.latency_bound_ms=-1", "> 0"]),
    (["scenario=server", "scenario.find_max_qps=maybe"], ["scenario.find_max_qps='maybe'", "true or false"]),
    (["scenario=server", "protocol.cooloff_s=1"], ["scenario=server is driven by LoadGen", "without cool-off"]),
    (["scenario=offline", "scenario.workers=0"], ["scenario.workers=0", "integer from 1 to 1024"]),
    (["scenario=multi_stream", "scenario.samples_per_query=-8"], ["scenario.samples_per_query=-8", "integer from 1"]),
    (["+scenario.target_qps=5"], ["scenario.target_qps", "scenario=single_stream has no such key"]),
    (["colocate=[resnet50]"], ["colocate=['resnet50']", "two or more different models"]),
    (["colocate=[resnet50,nosuch]"], ["no model named 'nosuch'", "squeezenet1_1"]),
    (["colocate=[resnet18,squeezenet1_1]", "colocate_threads=[1]"], ["colocate_threads=[1]", "one positive thread count"]),
    (["colocate_threads=[1,1]"], ["colocate_threads=[1, 1] needs colocate"]),
    (["farm=nope"], ["Could not find 'farm/nope'"]),
    (["farm=ray"], ["farm=ray sends a sweep's jobs", "add -m"]),
    (["-m", "farm=ray", "farm.node_wait_s=-1"], ["farm.node_wait_s=-1", ">= 0"]),
    (["-m", "farm=ray", "farm.retry_lost=often"], ["farm.retry_lost='often'", "true or false"]),
    (["-m", "farm=ray", "farm.address=127.0.0.1:1"], ["farm.address=127.0.0.1:1", "no Ray head answers"]),
    (["-m", "farm=local,ray"], ["farm.* differs between the jobs"]),
    # every numeric setting is checked by type and range (issue 18, point 13)
    (["platform.specs.peak_fp32_gflops=-5"], ["platform.specs.peak_fp32_gflops=-5", "> 0", "null"]),
    (["platform.specs.tdp_w=-1"], ["platform.specs.tdp_w=-1", "> 0"]),
    (["platform.specs.memory_bandwidth_gbs=fast"], ["platform.specs.memory_bandwidth_gbs='fast'", "> 0"]),
    (["platform=xeon4116", "platform.specs.cores=0"], ["platform.specs.cores=0", "positive integer"]),
    (["platform=xeon4116", "platform.specs.clock_ghz=inf"], ["platform.specs.clock_ghz=inf", "finite number > 0"]),
    (["-m", "platform.specs.tdp_w=10,-1"], ["platform.specs.tdp_w=-1", "> 0"]),
    (["colocate=[resnet18,squeezenet1_1]", "colocate_threads=3"], ["colocate_threads=3", "one positive thread count per network"]),
    (["colocate_threads=3"], ["colocate_threads=3 needs colocate"]),
    (["colocate=5"], ["colocate=5", "two or more different models"]),
    (["colocate=[[resnet18],squeezenet1_1]"], ["colocate=[['resnet18'], 'squeezenet1_1']", "model config names"]),
    (["colocate=[resnet18,squeezenet1_1]", "colocate_threads=[1,x]"], ["colocate_threads[1]='x'", "positive integer"]),
    (["colocate=[resnet18,squeezenet1_1]", "colocate_threads=[0,1]"], ["colocate_threads[0]=0", "positive integer"]),
    (["colocate=[resnet18,squeezenet1_1]", "colocate_threads=[1.5,1]"], ["colocate_threads[0]=1.5", "positive integer"]),
    (["colocate=[resnet18,squeezenet1_1]", "colocate_threads=[1,999]"], ["colocate_threads[1]=999", "logical CPUs"]),
    (["protocol.max_duration_s=1e9"], ["protocol.max_duration_s=1000000000.0", "<= 604800"]),
    (["protocol.max_iterations=100000000000000000000"], ["protocol.max_iterations=100000000000000000000", "2**63 - 1"]),
    (["scenario=server", "scenario.target_qps=1e300"], ["scenario.target_qps=1e+300", "<= 1000000"]),
    (["scenario=server", "scenario.latency_bound_ms=1e30"], ["scenario.latency_bound_ms=1e+30", "<= 604800000"]),
    (["scenario=offline", "scenario.workers=100000"], ["scenario.workers=100000", "from 1 to 1024"]),
    (["scenario=server", "~scenario.target_qps"], ["scenario=server needs scenario.target_qps"]),
    (["backend=onnxruntime", "backend.runtime.calibration_seed=-1"], ["backend.runtime.calibration_seed=-1", "from 0"]),
    (["backend=openvino", "backend.runtime.calibration_seed=99999999999999999999"],
     ["backend.runtime.calibration_seed=99999999999999999999", "2**63 - 1"]),
    (["scenario=offline", "protocol.target_ci=0.01"], ["protocol.target_ci=0.01 needs scenario=single_stream"]),
    (["-m", "farm=ray", "farm.node_wait_s=1e12"], ["farm.node_wait_s=1000000000000.0", "<= 604800"]),
    (["-m", "farm=ray", "farm.address=127.0.0.1:99999"], ["farm.address='127.0.0.1:99999'", "port from 1 to 65535"]),
]

# `embench node`: a host that lacks the platform, or a mistyped command, is refused before Ray starts
NODE_CORPUS = [
    (["--platform", "xavier", "--head"], ["platform=xavier needs", "this host lacks"]),
    (["--platform", "nonesuch", "--head"], ["Could not find 'platform/nonesuch'"]),
    (["--platform", "cpu,xavier", "--address", "127.0.0.1:6379"], ["platform=xavier needs"]),
    (["--head"], ["--platform"]),
    (["--platform", "cpu"], ["--address", "--head"]),
    (["--platform", ",", "--head"], ["names no platform"]),
    (["--platform", "cpu", "--head", "--port", "70000"], ["--port", "'70000' is not valid", "from 1 to 65535"]),
    (["--platform", "cpu", "--head", "--port", "0"], ["--port", "'0' is not valid", "from 1 to 65535"]),
    (["--platform", "cpu", "--head", "--num-cpus", "-1"], ["--num-cpus", "'-1' is not valid", "from 0"]),
    (["--platform", "cpu", "--address", "192.0.2.99:6379", "--insecure"],
     ["--address=192.0.2.99:6379 is not this host's loopback", "without a token runs on loopback only", "--insecure twice"]),
    (["--platform", "cpu", "--address", "127.0.0.1:6379"], ["this node has no farm token", "RAY_AUTH_TOKEN_PATH"]),
]


def assert_refused(proc: subprocess.CompletedProcess, needles: list[str], prefix: str = "embench: error:") -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in proc.stderr.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


CONCURRENT_COMMANDS = 4  # the corpus's commands spend their time starting Python: several at once on 2 cores


@pytest.fixture(scope="module")
def corpus_answers(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Every CORPUS command run once, a few at a time, each in a folder of its own: (folder, process)."""
    def refuse(args: list[str]) -> tuple[Path, subprocess.CompletedProcess]:
        folder = tmp_path_factory.mktemp("bad_input")
        return folder, subprocess.run([sys.executable, "-m", "embench", *args, "protocol=quick"], cwd=folder,
                                      env=cli_env(folder), capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(CONCURRENT_COMMANDS) as pool:
        return dict(zip((" ".join(args) for args, _ in CORPUS), pool.map(refuse, (args for args, _ in CORPUS))))


@pytest.mark.parametrize("key", ["model.foo=1", "backend.runtime.dtype=bf16"])
def test_an_unknown_key_is_one_line_not_hydras_four(corpus_answers, key):
    """Hydra's own answer to an unknown key is four lines (the override, the `+` hint, the key, its type)."""
    _, proc = corpus_answers[key]
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [proc.stderr.strip()], proc.stderr


@pytest.mark.parametrize("args, needles", CORPUS, ids=[" ".join(args) for args, _ in CORPUS])
def test_bad_input_is_refused_in_one_line_before_anything_runs(corpus_answers, args, needles):
    tmp_path, proc = corpus_answers[" ".join(args)]
    assert_refused(proc, needles)
    assert not list(tmp_path.glob("outputs/**/result.json"))  # nothing measured
    store = tmp_path / "mlflow.db"
    if store.exists():
        from mlflow import MlflowClient

        assert runs_of(MlflowClient(tracking_uri=f"sqlite:///{store}")) == []


def test_deleted_experiment_is_refused_with_how_to_restore_it(tmp_path, mlflow_client):
    mlflow_client.delete_experiment(mlflow_client.create_experiment("gone"))
    proc = subprocess.run([sys.executable, "-m", "embench", "tracking.experiment=gone", "protocol=quick"], cwd=tmp_path,
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert_refused(proc, ["tracking.experiment='gone' is deleted", "mlflow experiments restore --experiment-id"])
    assert not list(tmp_path.glob("outputs/**/result.json"))


REPORT_CORPUS = [
    (["--output", "a_file"], ["--output a_file is a file"]),
    (["--output", "read_only/report"], ["--output read_only/report cannot be written"]),
    (["--tracking-uri", "foo://bar"], ["--tracking-uri 'foo://bar' is not a store MLflow can use"]),
    (["--tracking-uri", "sqlite://x.db"], ["--tracking-uri 'sqlite://x.db'", "Valid SQLite URL forms"]),
    (["--tracking-uri", ""], ["--tracking-uri '' is empty"]),
    (["--batch", "0"], ["--batch 0", "positive integers"]),
    (["--batch", "1,-2"], ["--batch -2", "positive integers"]),
    (["--aggregate", "mean"], ["--aggregate", "invalid choice: 'mean'"]),
    (["--tag", "novalue"], ["--tag 'novalue'", "KEY=VALUE"]),
]


@pytest.mark.parametrize("args, needles", REPORT_CORPUS, ids=[" ".join(args) for args, _ in REPORT_CORPUS])
def test_report_bad_input_is_refused_in_one_line(tmp_path, args, needles):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "read_only").mkdir(mode=0o555)
    command = [sys.executable, "-m", "embench.report", *args]
    if "read_only" in " ".join(args):  # CI runs as root: drop the capability that ignores permissions
        command = ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override", *command]
    proc = subprocess.run(command, cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert_refused(proc, needles, prefix="embench.report: error:")


@pytest.mark.parametrize("args, needles", NODE_CORPUS, ids=[" ".join(args) for args, _ in NODE_CORPUS])
def test_node_bad_input_is_refused_in_one_line_before_ray_starts(tmp_path, args, needles):
    env = cli_env(tmp_path, HOME=str(tmp_path))  # no ~/.ray/auth_token
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "embench", "node", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert_refused(proc, needles)
    assert "ray.scripts" not in proc.stdout  # Ray was never started


def test_a_token_file_other_users_can_read_is_refused_in_one_line(tmp_path):
    loose = tmp_path / "auth_token"
    loose.write_text("0" * 64)
    loose.chmod(0o644)
    for args in (["--head"], ["--address", "127.0.0.1:6379"]):
        proc = subprocess.run([sys.executable, "-m", "embench", "node", "--platform", "cpu", *args], cwd=tmp_path,
                              env=cli_env(tmp_path, RAY_AUTH_TOKEN_PATH=str(loose)), capture_output=True, text=True,
                              timeout=120)
        assert_refused(proc, [f"token file {loose} can be read by other users (mode 644)", f"chmod 600 {loose}"])
        assert loose.stat().st_mode & 0o777 == 0o644 and "ray.scripts" not in proc.stdout  # left as it was
