"""Files a run leaves in its output dir; MLflow gets a copy of the whole dir as artifacts."""

import csv
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from embench.result import RunResult

RESULT_FILE = "result.json"


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_run_files(out_dir: Path, result: RunResult, cfg: DictConfig) -> None:
    """result.json first (nothing is lost), then the resolved config, latencies and profile."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result.save(out_dir / RESULT_FILE)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    _write_csv(out_dir / "latencies.csv", [{"iteration": i, "latency_ms": ms} for i, ms in enumerate(result.latencies_ms)])
    if result.profile is not None:
        _write_csv(out_dir / "profile_ops.csv", result.profile.op_rows())
        _write_csv(out_dir / "profile_categories.csv", result.profile.category_rows())


def write_traceback(out_dir: Path, err: BaseException) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "error.txt"
    path.write_text("".join(traceback.format_exception(err)))
    return path
