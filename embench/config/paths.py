"""Where configs are: embench's own conf/, and the folders a run searches for config groups."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict


def config_dir() -> str:
    """conf/ inside an installed package, else conf/ beside the package in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"embench's conf/ is missing next to {package}: reinstall embench")


def search_dirs(hydra_cfg: DictConfig | None) -> list[Path]:
    """The run's config folders in Hydra's search order (a --config-dir and hydra.searchpath included);
    embench's conf/ alone outside a Hydra run."""
    sources = hydra_cfg.runtime.config_sources if hydra_cfg is not None else []
    found = [Path(source.path) for source in sources if source.schema == "file"]
    return found or [Path(config_dir())]


def group_options(group: str, dirs: list[Path]) -> dict[str, Path]:
    """Each option of a config group, by name, from the first folder that has it (Hydra's rule)."""
    options: dict[str, Path] = {}
    for folder in dirs:
        for path in sorted((folder / group).glob("*.yaml")):
            options.setdefault(path.stem, path)
    return options


def add_colocated_models(task: DictConfig, dirs: list[Path]) -> None:
    """A co-located run carries its networks' model configs, found on the run's search path (a --config-dir
    included), so that the process measuring it (a worker, a farm node) needs no search path of its own."""
    names = task.get("colocate")
    if not names:
        return
    options = group_options("model", dirs)
    with open_dict(task):
        task.colocated_models = {str(name): OmegaConf.load(options[str(name)]) for name in names}
