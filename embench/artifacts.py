"""Files a run leaves in its output dir; MLflow gets a copy of the whole dir as artifacts."""

import csv
import errno
import os
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from embench import credentials, outcome
from embench.result import RunResult

RESULT_FILE = "result.json"

# Errors of a folder, not of what is written: full, over quota, read-only, not permitted.
CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def fallback_dir(wanted: Path) -> Path:
    """Where files go when `wanted` cannot be written: its whole path under the temp folder, so that a sweep's
    stand-in holds its jobs' stand-ins."""
    return Path(tempfile.gettempdir(), "embench-unwritable", *wanted.absolute().parts[1:])


def writable(folder: Path) -> bool:
    """Whether files can be written in `folder` (made if missing): a full disk still creates empty files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"embench")
            probe.flush()
            return True
    except OSError:
        return False


def can_create(folder: Path) -> bool:
    """Whether `folder` exists as a writable folder or could be made, without making it."""
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _write_all(out_dir: Path, result: RunResult, cfg: DictConfig) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result.save(out_dir / RESULT_FILE)
    (out_dir / "config.yaml").write_text(credentials.redact(OmegaConf.to_yaml(cfg, resolve=True)))
    _write_csv(out_dir / "latencies.csv", [{"iteration": i, "latency_ms": ms} for i, ms in enumerate(result.latencies_ms)])
    if result.profile is not None:
        _write_csv(out_dir / "profile_ops.csv", result.profile.op_rows())
        _write_csv(out_dir / "profile_categories.csv", result.profile.category_rows())
    for name, content in result.files.items():
        (out_dir / name).write_bytes(content)


def write_run_files(out_dir: Path, result: RunResult, cfg: DictConfig) -> Path | None:
    """result.json first (nothing is lost), then the resolved config, latencies and profile.

    Returns the folder the files are in: `out_dir`, or when that cannot be written a folder under
    the temp dir, named in one line; None when neither can be written (MLflow still gets the run).
    """
    try:
        _write_all(out_dir, result, cfg)
        return out_dir
    except OSError as err:
        reason = err.strerror or type(err).__name__
    elsewhere = fallback_dir(out_dir)
    try:
        _write_all(elsewhere, result, cfg)
    except OSError as err:
        outcome.say_error(f"cannot write {out_dir} ({reason}) nor {elsewhere} ({err.strerror}); "
                          "the run goes to MLflow without its files")
        return None
    outcome.say_error(f"cannot write {out_dir} ({reason}); this run's files are in {elsewhere}")
    return elsewhere


def scrub_credentials(folder: Path) -> None:
    """Removes tracking-URI credentials from the YAML files Hydra wrote (they may come from a config file)."""
    for path in folder.glob("*.yaml"):
        if not path.is_file():  # only what Hydra wrote: a device or a pipe is never read
            continue
        try:
            text = path.read_text()
            redacted = credentials.redact(text)
            if redacted != text:
                path.write_text(redacted)
        except OSError:
            pass


def write_traceback(out_dir: Path, text: str) -> Path:
    """error.txt with the traceback, in `out_dir` or, when that cannot be written, its stand-in."""
    path = out_dir / "error.txt"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        path = fallback_dir(out_dir) / "error.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path
