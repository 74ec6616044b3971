"""The record of one run: params, metrics, tags, status; written to result.json before MLflow."""

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from embench.names import BACKEND_PARAM, BATCH_PARAM, MODEL_PARAM, PLATFORM_PARAM, POINT_PARAMS, PROTOCOL_PARAM
from embench.profiling import Profile

# Not properties of the measurement: where it is logged, whether a sweep resumes, where jobs are sent.
_NOT_THE_POINT = ("tracking", "resume", "farm")


def _flatten(node, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: "null" if node is None else str(node)}


def _measured_config(cfg: DictConfig) -> dict:
    container = OmegaConf.to_container(cfg, resolve=True)
    for section in _NOT_THE_POINT:
        container.pop(section, None)
    return container


def point_key(cfg: DictConfig) -> str:
    """Names what is measured: the resolved config less tracking and resume settings."""
    text = json.dumps(_measured_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def run_params(cfg: DictConfig) -> dict[str, str]:
    """The point's five keys plus the flattened resolved config."""
    container = _measured_config(cfg)
    params = {
        MODEL_PARAM: str(cfg.model.name),
        PLATFORM_PARAM: str(cfg.platform.name),
        BACKEND_PARAM: str(cfg.backend.name),
        PROTOCOL_PARAM: str(cfg.protocol.name),
        BATCH_PARAM: str(cfg.batch),
    }
    params.update(_flatten(container))
    if cfg.get("colocate"):
        params[MODEL_PARAM] = "+".join(cfg.colocate)
    return params


@dataclass
class RunResult:
    """Everything one run learned; filled as the run goes, so a failure keeps what was measured."""

    params: dict[str, str]
    status: str = "running"  # running | ok | failed | oom | killed
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    profile: Profile | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # artifacts by file name (a converted program)
    start_time: float = field(default_factory=time.time)
    end_time: float = 0.0
    run_uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    tracking: dict[str, str | None] = field(default_factory=dict)  # experiment, parent run, sweep: for `embench sync`
    children: list["RunResult"] = field(default_factory=list)  # runs nested under this one (a max-QPS search's probes)

    def finish(self, status: str, error: str = "") -> None:
        self.status, self.error, self.end_time = status, error, time.time()

    def point(self) -> str:
        return " ".join(f"{key}={self.params.get(key)}" for key in POINT_PARAMS)

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "error": self.error,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
            "run_uid": self.run_uid,
            "tracking": self.tracking,
        }

    @classmethod
    def from_json(cls, record: dict) -> "RunResult":
        fields = ("status", "error", "start_time", "end_time", "params", "metrics", "tags", "run_uid", "tracking")
        return cls(**{key: record[key] for key in fields if key in record})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True))
