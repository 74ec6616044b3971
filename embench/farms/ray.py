"""`farm=ray`: a sweep's jobs run on the Ray cluster's nodes, each on a checked node that serves its platform.

A node (`embench node`) advertises each platform it serves as the Ray custom resource `platform:<name>`
of capacity 1, and one `embench:host` unit (one per platform with `--independent`); every job takes
one unit of each, so a host measures one job at a time. Every node is checked before its first job,
a node that joins mid-sweep too, and jobs go only to nodes that passed (Ray's node affinity). Nodes
only measure; the workstation writes every run folder and logs every MLflow run. Ray is imported only
here, never by a local run.
"""

import logging
import platform as pyplatform
import signal
import socket
import time
from dataclasses import dataclass, field
from importlib import metadata

import embench
from embench import checks, outcome, signals
from embench.config.schema import FLAG, Setting, seconds
from embench.errors import ConfigError
from embench.farms import auth
from embench.farms.base import Job
from embench.host import code_identity, package_versions
from embench.names import RUNTIME_VERSION_TAGS, VERSION_TAG
from embench.point.job import Measured, died, measure_yaml, new_result

log = logging.getLogger("embench")
RESOURCE_PREFIX = "platform:"
HOST_RESOURCE = "embench:host"  # one per host (per platform with --independent): every job takes one
POLL_S = 1.0
CONNECT_TIMEOUT_S = 5


def resource(platform_name: str) -> str:
    return RESOURCE_PREFIX + platform_name


def software() -> dict[str, str]:
    """What must match on every node: embench's code, exactly, and what Ray itself requires of a cluster
    (the same Ray, and the same Python major.minor, whose pickles carry the tasks)."""
    return {"embench": f"{embench.__version__} (code {code_identity()})", "ray": metadata.version("ray"),
            "python": ".".join(pyplatform.python_version_tuple()[:2])}


def runtime_versions() -> dict[str, str]:
    """The installed runtimes' versions, as their version.* tags: they may differ between nodes."""
    return package_versions(tag[len(VERSION_TAG):] for tag in RUNTIME_VERSION_TAGS)


class HostPort(Setting):
    """The Ray head's HOST:PORT, or auto."""

    def holds(self, value) -> bool:
        port = str(value).rpartition(":")[2]
        return isinstance(value, str) and bool(value.strip()) and not (port.isdigit() and not 0 < int(port) < 2**16)

    def __str__(self) -> str:
        return "the Ray head's HOST:PORT with a port from 1 to 65535, or auto for a cluster on this host"


def _probe(task_yaml: str) -> tuple[dict[str, str], dict[str, str]]:
    """On a node: the job's settings hold there (thread counts against its CPUs), its device and backend
    are there (as a local run checks); its software and runtime versions."""
    from omegaconf import OmegaConf

    task = OmegaConf.create(task_yaml)
    checks.check_config(task)
    checks.check_point(task)
    return software(), runtime_versions()


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


@dataclass
class _Node:
    """A live node of the farm as this sweep sees it: what it serves, its verdict per check, its jobs in flight."""

    id: str
    name: str
    platforms: set[str]
    slots: int  # jobs at once: its embench:host units
    alive: bool = True
    busy: int = 0
    probes: dict = field(default_factory=dict)  # probe ref -> the check key it answers
    verdicts: dict[str, str] = field(default_factory=dict)  # check key -> "" (passed) or why the node is refused

    def can_take(self, job: Job) -> bool:
        """Whether it can take the job now: free, and its check passed."""
        return self.busy < self.slots and job.check_key in self.verdicts and self.may_take(job)

    def may_take(self, job: Job) -> bool:
        """Whether it could take the job once free (its check passed or is under way)."""
        return self.alive and job.platform in self.platforms and self.verdicts.get(job.check_key, "") == ""


def _node_name(info: dict) -> str:
    return f"{info.get('NodeManagerHostname', '?')} ({info.get('NodeManagerAddress', '?')}, node {info['NodeID'][:8]})"


class RayFarm:
    """A connection to the farm's Ray cluster that runs a sweep's jobs on checked nodes serving their platforms."""

    OPTIONS = {"address": HostPort(), "node_wait_s": seconds(), "retry_lost": FLAG, "insecure": FLAG,
               "same_versions": FLAG}
    measures_here = False

    def __init__(self, name: str, address: str, node_wait_s: float, retry_lost: bool, insecure: bool = False,
                 same_versions: bool = False):
        self.name, self.address, self.node_wait_s, self.retry_lost = name, str(address), float(node_wait_s), retry_lost
        self.insecure, self.same_versions = insecure, same_versions
        self.ray = None
        self.nodes: dict[str, _Node] = {}
        self.unserved: dict[str, str] = {}
        self.said: set[tuple[str, str]] = set()
        self.refreshed = 0.0

    def _connect(self) -> None:
        _check_reachable(self.address)
        auth.use_token(self.insecure, "this workstation",
                       "a farm started with `embench node --insecure` is joined with farm.insecure=true")
        import ray  # after use_token: Ray reads RAY_AUTH_MODE once, when imported

        self.ray = ray
        handlers = {signum: signal.getsignal(signum) for signum in signals.HANDLED}
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(f"farm.address={self.address!r}: cannot join the Ray cluster: {' '.join(str(err).split())[:300]}; "
                              "start its head with `embench node --head --platform PLATFORM`; a farm with a token "
                              "needs the head's token here") from None
        finally:  # ray.init installs its own SIGTERM handler: a signal must end the sweep as it does locally
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        # max_calls=1: each job gets a fresh worker process, so no job inherits an earlier job's per-process caches
        self.measure, self.probe = ray.remote(max_calls=1)(_measure_on_node), ray.remote(_probe)
        self.here = software(), runtime_versions()

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
        """Joins the cluster, waits (farm.node_wait_s at most) for a node per platform, then checks every node
        serving the jobs' platforms, for each distinct point.

        Raises ConfigError when no node can measure some job (each refused: no device or backend there,
        other embench code, Ray or Python); a refused node beside good ones is noted and gets no job;
        platforms no node serves are noted and their jobs fail.
        """
        self._connect()
        self.wanted = {}
        for job in jobs:
            self.wanted.setdefault(job.platform, {}).setdefault(job.check_key, job.task_yaml)
        start = time.monotonic()
        while not set(self.wanted) <= self.served() and time.monotonic() - start < self.node_wait_s:
            time.sleep(POLL_S)
        for name in sorted(set(self.wanted) - self.served()):  # their jobs fail, each in one line; the others run
            self.unserved[name] = self._unserved_reason(name, time.monotonic() - start)
        checking = time.monotonic()
        self._refresh(force=True)
        self._settle(timeout=None)
        log.info("farm: checked %d node(s) in %.2f s", len(self.nodes), time.monotonic() - checking)
        for job in jobs:
            serving = [node for node in self.nodes.values() if job.platform in node.platforms]
            if serving and not any(node.may_take(job) for node in serving):
                refusals = "; ".join(f"node {node.name}: {node.verdicts[job.check_key]}" for node in serving)
                raise ConfigError(f"no node of the farm can measure platform={job.platform}: {refusals}")

    def _refresh(self, force: bool = False) -> None:
        """Takes in nodes that joined (checking each before its first job) and marks those that left."""
        if not force and time.monotonic() - self.refreshed < POLL_S:
            return
        self.refreshed = time.monotonic()
        for info in self.ray.nodes():
            node = self.nodes.get(info["NodeID"])
            if not info["Alive"]:
                if node:
                    node.alive = False
                continue
            resources = info["Resources"]
            platforms = {name[len(RESOURCE_PREFIX):] for name in resources if name.startswith(RESOURCE_PREFIX)}
            if node is None and platforms & set(self.wanted):
                node = self.nodes[info["NodeID"]] = _Node(info["NodeID"], _node_name(info), platforms & set(self.wanted),
                                                         int(resources.get(HOST_RESOURCE, 0)))
                self._probe_node(node)

    def _probe_node(self, node: _Node) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if not node.slots:
            for name in node.platforms:
                for key in self.wanted[name]:
                    self._refuse(node, key, f"it has no {HOST_RESOURCE} unit: start it with `embench node`")
            return
        for name in node.platforms:
            for key, task_yaml in self.wanted[name].items():
                ref = self.probe.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node.id, soft=False)).remote(task_yaml)
                node.probes[ref] = key

    def _settle(self, timeout: float | None = 0) -> None:
        """Records the verdicts of the node checks that finished (all of them when `timeout` is None)."""
        probes = {ref: node for node in self.nodes.values() for ref in node.probes}
        if not probes:
            return
        done, _ = self.ray.wait(list(probes), num_returns=len(probes), timeout=timeout)
        for ref in done:
            node = probes[ref]
            key = node.probes.pop(ref)
            try:
                there = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as err:
                cause = err.cause if isinstance(err.cause, Exception) else err
                self._refuse(node, key, " ".join(str(cause).split())[:400])
            except self.ray.exceptions.RayError as err:
                self._refuse(node, key, f"its check did not finish ({type(err).__name__})")
            else:
                self._judge(node, key, there)

    def _judge(self, node: _Node, key: str, there: tuple[dict, dict]) -> None:
        (software_there, versions_there), (software_here, versions_here) = there, self.here
        differ = [f"{name} {software_there.get(name)} there, {value} here" for name, value in software_here.items()
                  if software_there.get(name) != value]
        if differ:
            return self._refuse(node, key, f"it runs other software than this workstation ({'; '.join(differ)}): "
                                           "install the same embench, Ray and Python there")
        differ = [f"{name} {versions_there.get(name, 'absent')} there, {value} here"
                  for name, value in versions_here.items() if versions_there.get(name) != value]
        if differ and self.same_versions:
            return self._refuse(node, key, f"its runtime versions differ from this workstation's ({'; '.join(differ)}) "
                                           "and farm.same_versions=true")
        node.verdicts[key] = ""

    def _refuse(self, node: _Node, key: str, why: str) -> None:
        node.verdicts[key] = why
        if (node.id, why) not in self.said:
            self.said.add((node.id, why))
            outcome.say_note(f"node {node.name} (platform={', '.join(sorted(node.platforms))}) gets no job: {why}")

    def run(self, jobs: list[Job]):
        """Yields (job, Measured) as jobs finish, each measured on a checked node serving its platform."""
        queue, in_flight, stranded = [], {}, {}
        for job in jobs:
            if job.platform in self.unserved:
                yield job, died(job.task, self.unserved[job.platform])
            else:
                queue.append(job)
        try:
            while queue or in_flight:
                self._refresh()
                self._settle()
                for job in list(queue):
                    node = next((node for node in self.nodes.values() if node.can_take(job)), None)
                    if node:
                        queue.remove(job)
                        node.busy += 1
                        in_flight[self._submit(job, node)] = job, node
                yield from self._fail_stranded(queue, stranded)
                yield from self._collect(in_flight, queue)
        except KeyboardInterrupt as signalled:  # as a local sweep: the jobs in flight end as killed, the last says why
            stop = signals.as_interrupted(signalled)
            cut = list(in_flight.values())
            self._cancel(in_flight)
            if not cut:
                raise stop from None
            for number, (job, node) in enumerate(cut, 1):
                yield job, self._cut_short(job, node, stop, last=number == len(cut))
        finally:
            self._cancel(in_flight)

    def _cancel(self, in_flight: dict) -> None:
        """Stops the jobs in flight on their nodes (their worker processes are killed)."""
        for ref in in_flight:
            self.ray.cancel(ref, force=True)
        in_flight.clear()

    @staticmethod
    def _cut_short(job: Job, node: _Node, stop: signals.Interrupted, last: bool) -> Measured:
        result = new_result(job.task)
        result.finish("killed", f"{stop.describe()}: the sweep stopped and cancelled it on node {node.name}")
        return Measured(result, stop.exit_code, interrupted_by=stop.signum if last else None)

    def _submit(self, job: Job, node: _Node):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return self.measure.options(num_cpus=0, max_retries=0, resources={resource(job.platform): 1, HOST_RESOURCE: 1},
                                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.id, soft=False)
                                    ).remote(job.task_yaml)

    def _collect(self, in_flight: dict, queue: list):
        """Waits up to POLL_S for a job to finish; yields it, or sends it out again when its node was lost."""
        if not in_flight:
            time.sleep(POLL_S)
            return
        ready, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
        for ref in ready:
            job, node = in_flight.pop(ref)
            node.busy -= 1
            try:
                yield job, self.ray.get(ref)
            except self.ray.exceptions.RayError as err:
                self._refresh(force=True)
                lost = not node.alive or self._node_lost(err)
                node.alive = node.alive and not lost  # before Ray's heartbeats say so: no job goes back to it
                if lost and self.retry_lost and not job.retried:
                    job.retried = f"node lost ({type(err).__name__}); measured again on another node"
                    outcome.say_note(f"job {job.number}: its node {node.name} was lost ({type(err).__name__}); "
                                     f"measuring it again on another node serving platform={job.platform}")
                    queue.append(job)
                else:
                    yield job, died(job.task, self._failure(err, lost))

    def _node_lost(self, err) -> bool:
        exceptions = self.ray.exceptions
        return isinstance(err, (exceptions.NodeDiedError, exceptions.LocalRayletDiedError, exceptions.ObjectLostError,
                                exceptions.TaskUnschedulableError)) \
            or "node" in str(err).lower() and "died" in str(err).lower()

    def _failure(self, err, lost: bool) -> str:
        if lost:
            return f"node lost: the node measuring it left the farm ({type(err).__name__})"
        if isinstance(err, self.ray.exceptions.WorkerCrashedError):
            return ("the job's process on the node died (a segfault, SIGKILL or the kernel's OOM killer; "
                    "the node's Ray logs name it)")
        return f"{type(err).__name__}: {' '.join(str(err).split())[:400]}"

    def _fail_stranded(self, queue: list, stranded: dict[int, float]):
        """Jobs that no live, unrefused node can take fail after farm.node_wait_s instead of waiting forever."""
        now = time.monotonic()
        for job in list(queue):
            if any(node.may_take(job) for node in self.nodes.values()):
                stranded.pop(job.number, None)
                continue
            since = stranded.setdefault(job.number, now)
            if now - since >= self.node_wait_s:
                queue.remove(job)
                refused = [f"node {node.name}: {node.verdicts[job.check_key]}" for node in self.nodes.values()
                           if node.alive and job.platform in node.platforms and node.verdicts.get(job.check_key)]
                yield job, died(job.task, f"no node that passed its check serves platform={job.platform}: "
                                          f"{'; '.join(refused)}" if refused
                                else self._unserved_reason(job.platform, now - since, lost=True))

    def close(self) -> None:
        if self.ray is not None:
            self.ray.shutdown()
