"""`farm=ray`: a sweep's jobs run on the Ray cluster's nodes, each on a node that serves its platform.

A node advertises each platform it serves as the Ray custom resource `platform:<name>` of capacity
1 (`embench node`), and every job asks for one unit of its platform's resource: jobs for different
devices run at once, jobs for one device one after another. Nodes only measure; the workstation
writes every run folder and logs every MLflow run. Ray is imported only here, never by a local run.
"""

import hashlib
import logging
import platform as pyplatform
import socket
import time
from importlib import metadata
from pathlib import Path

import embench
from embench import checks, outcome
from embench.config.schema import FLAG, Setting, seconds
from embench.errors import ConfigError
from embench.farms.base import Job
from embench.point.job import Measured, died, measure_yaml

log = logging.getLogger("embench")
RESOURCE_PREFIX = "platform:"
PROBE_SHARE = 0.01  # of a platform's unit: a probe can run beside a job of another sweep
POLL_S = 1.0
CONNECT_TIMEOUT_S = 5


def resource(platform_name: str) -> str:
    return RESOURCE_PREFIX + platform_name


def software() -> dict[str, str]:
    """What must match between workstation and node for their numbers to mean the same."""
    code = hashlib.sha1()
    for path in sorted(Path(embench.__file__).parent.rglob("*.py")):
        code.update(path.read_bytes())
    return {"embench": f"{embench.__version__} (code {code.hexdigest()[:10]})", "torch": metadata.version("torch"),
            "python": pyplatform.python_version()}


class HostPort(Setting):
    """The Ray head's HOST:PORT, or auto."""

    def holds(self, value) -> bool:
        port = str(value).rpartition(":")[2]
        return isinstance(value, str) and bool(value.strip()) and not (port.isdigit() and not 0 < int(port) < 2**16)

    def __str__(self) -> str:
        return "the Ray head's HOST:PORT with a port from 1 to 65535, or auto for a cluster on this host"


def _probe(task_yaml: str) -> dict[str, str]:
    """On a node: the job's settings hold there (thread counts against its CPUs), its device and backend
    are there (as a local run checks), and its versions."""
    from omegaconf import OmegaConf

    task = OmegaConf.create(task_yaml)
    checks.check_config(task)
    checks.check_point(task)
    return software()


def _measure_on_node(task_yaml: str) -> Measured:
    import ray

    logging.getLogger("embench").setLevel(logging.INFO)
    measured = measure_yaml(task_yaml)
    measured.result.tags["ray.node_id"] = ray.get_runtime_context().get_node_id()
    return measured


def _check_reachable(address: str) -> None:
    """A head that does not answer is said at once: ray.init would retry for minutes."""
    host, _, port = address.rpartition(":")
    if address == "auto" or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConfigError(f"farm.address={address}: no Ray head answers there ({err.strerror or err}); start one with "
                          "`embench node --head --platform PLATFORM`, or set farm.address / RAY_ADDRESS") from None


class RayFarm:
    """A connection to the farm's Ray cluster that runs a sweep's jobs on the nodes serving their platforms."""

    OPTIONS = {"address": HostPort(), "node_wait_s": seconds(), "retry_lost": FLAG}
    measures_here = False

    def __init__(self, name: str, address: str, node_wait_s: float, retry_lost: bool):
        self.name, self.address, self.node_wait_s, self.retry_lost = name, str(address), float(node_wait_s), retry_lost
        self.ray = None

    def _connect(self) -> None:
        import ray

        self.ray = ray
        _check_reachable(self.address)
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(f"farm.address={self.address!r}: cannot join the Ray cluster: {' '.join(str(err).split())[:300]}; "
                              "start its head with `embench node --head --platform PLATFORM`") from None
        # max_calls=1: each job gets a fresh worker process, so no job inherits an earlier job's per-process caches
        self.measure, self.probe = ray.remote(max_calls=1)(_measure_on_node), ray.remote(_probe)
        self.unserved: dict[str, str] = {}

    def served(self) -> set[str]:
        """The platforms some live node serves now."""
        return {name[len(RESOURCE_PREFIX):] for node in self.ray.nodes() if node["Alive"]
                for name in node["Resources"] if name.startswith(RESOURCE_PREFIX)}

    def _unserved_reason(self, platform_name: str, waited: float, lost: bool = False) -> str:
        served = ", ".join(f"platform={name}" for name in sorted(self.served())) or "no platform"
        what = "node lost: the farm at {} lost its last node serving" if lost else "the farm at {} has no node serving"
        return (f"{what.format(self.address)} platform={platform_name} (waited {waited:.0f} s, farm.node_wait_s); "
                f"it serves {served}; add one with `embench node --platform {platform_name} --address {self.address}`")

    def check(self, jobs: list[Job]) -> None:
        """Joins the cluster, waits (farm.node_wait_s at most) for a node per platform, then checks each distinct
        point there.

        Raises ConfigError when a node lacks the job's device or backend, or runs other versions
        of embench, torch or Python than this workstation; platforms no node serves are noted.
        """
        self._connect()
        wanted = {job.platform for job in jobs}
        start = time.monotonic()
        while not wanted <= self.served() and time.monotonic() - start < self.node_wait_s:
            time.sleep(POLL_S)
        for name in sorted(wanted - self.served()):  # their jobs fail, each in one line; the others run
            self.unserved[name] = self._unserved_reason(name, time.monotonic() - start)
        probes = {}
        for job in jobs:
            if job.platform not in self.unserved and job.check_key not in probes:
                probes[job.check_key] = (job, self.probe.options(
                    num_cpus=0, max_retries=0, resources={resource(job.platform): PROBE_SHARE}).remote(job.task_yaml))
        here = software()
        for job, ref in probes.values():
            try:
                there = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as err:
                cause = err.cause if isinstance(err.cause, Exception) else err
                raise ConfigError(f"platform={job.platform} on the farm: {' '.join(str(cause).split())[:400]}") from None
            differ = [f"{key} {there[key]} there, {here[key]} here" for key in here if there.get(key) != here[key]]
            if differ:
                raise ConfigError(f"the farm's node for platform={job.platform} runs other software than this workstation "
                                  f"({'; '.join(differ)}): install the same embench, torch and Python on both")

    def run(self, jobs: list[Job]):
        """Yields (job, Measured) as jobs finish, on whichever node serves their platform."""
        pending = {}
        for job in jobs:
            if job.platform in self.unserved:
                yield job, died(job.task, self.unserved[job.platform])
            else:
                pending[self._submit(job)] = job
        try:
            yield from self._collect(pending)
        finally:
            for ref in pending:
                self.ray.cancel(ref, force=True)

    def _submit(self, job):
        return self.measure.options(num_cpus=0, max_retries=0, resources={resource(job.platform): 1}).remote(job.task_yaml)

    def _collect(self, pending: dict):
        orphaned_since: dict[str, float] = {}
        while pending:
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    yield job, self.ray.get(ref)
                except self.ray.exceptions.RayError as err:
                    retry = self._retry(job, err)
                    if retry is None:
                        yield job, died(job.task, self._failure(err))
                    else:
                        pending[retry] = job
            yield from self._fail_orphans(pending, orphaned_since)

    def _retry(self, job, err):
        """A job whose node was lost goes once more to another node serving its platform (farm.retry_lost)."""
        if not (self._node_lost(err) and self.retry_lost and not job.retried):
            return None
        job.retried = f"node lost ({type(err).__name__}); measured again on another node"
        outcome.say_note(f"job {job.number}: its node was lost ({type(err).__name__}); measuring it again on another "
                         f"node serving platform={job.platform}")
        return self._submit(job)

    def _node_lost(self, err) -> bool:
        exceptions = self.ray.exceptions
        return isinstance(err, (exceptions.NodeDiedError, exceptions.LocalRayletDiedError, exceptions.ObjectLostError)) \
            or "node" in str(err).lower() and "died" in str(err).lower()

    def _failure(self, err) -> str:
        if self._node_lost(err):
            return f"node lost: the node measuring it left the farm ({type(err).__name__})"
        if isinstance(err, self.ray.exceptions.WorkerCrashedError):
            return ("the job's process on the node died (a segfault, SIGKILL or the kernel's OOM killer; "
                    "the node's Ray logs name it)")
        return f"{type(err).__name__}: {' '.join(str(err).split())[:400]}"

    def _fail_orphans(self, pending: dict, orphaned_since: dict[str, float]):
        """Jobs waiting for a platform whose last node left fail after farm.node_wait_s instead of hanging."""
        waiting = {job.platform for job in pending.values()}
        served = self.served() if waiting else set()
        now = time.monotonic()
        for name in waiting:
            if name in served:
                orphaned_since.pop(name, None)
                continue
            since = orphaned_since.setdefault(name, now)
            if now - since >= self.node_wait_s:
                reason = self._unserved_reason(name, now - since, lost=True)
                for ref, job in list(pending.items()):
                    if job.platform == name:
                        del pending[ref]
                        self.ray.cancel(ref, force=True)
                        yield job, died(job.task, reason)

    def close(self) -> None:
        if self.ray is not None:
            self.ray.shutdown()
