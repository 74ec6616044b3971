"""embench's on-disk cache: measured peaks, converted models. EMBENCH_CACHE_DIR moves it."""

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("EMBENCH_CACHE_DIR") or Path.home() / ".cache" / "embench")


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
