"""Every config in conf/ composes, resolves, validates and instantiates."""

import importlib.util

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from embench.config.validate import validate

GROUPS = ("model", "platform", "backend", "protocol")


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@pytest.fixture
def compose_cfg():
    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=False)

    yield _compose
    GlobalHydra.instance().clear()


def test_defaults(compose_cfg):
    cfg = compose_cfg()
    assert (cfg.model.name, cfg.platform.name, cfg.backend.name, cfg.protocol.name, cfg.batch) == (
        "resnet18", "cpu", "torch", "latency", 1
    )
    assert cfg.tracking.experiment == "embench"


def test_tracking_defaults_to_a_local_sqlite_store(compose_cfg, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert compose_cfg().tracking.uri == "sqlite:///mlflow.db"


def test_environment_wins_over_tracking_defaults(compose_cfg, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    cfg = compose_cfg()
    assert (cfg.tracking.uri, cfg.tracking.experiment) == ("http://127.0.0.1:5000", "mine")


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_resolves_and_validates(compose_cfg, group, option):
    cfg = compose_cfg(f"{group}={option}")
    OmegaConf.to_container(cfg, resolve=True)
    assert cfg[group].name == option  # the name logged as the point's key is the option's name
    validate(cfg)


@pytest.mark.parametrize("option", options("backend"))
def test_every_backend_instantiates(compose_cfg, option):
    from embench.backends import Backend

    cfg = compose_cfg(f"backend={option}")
    try:
        runtime = instantiate(cfg.backend.runtime)
    except InstantiationException as err:  # a runtime whose extra is not installed here (TensorRT on a CPU host)
        assert f'pip install "embench[{option}]"' in str(err.__cause__.__cause__)
        assert importlib.util.find_spec(option) is None
        return
    assert isinstance(runtime, Backend) and runtime.DEVICE_KINDS


@pytest.mark.parametrize("option", options("experiment"))
def test_every_experiment_composes(compose_cfg, option):
    cfg = compose_cfg(f"experiment={option}")
    validate(cfg)


@pytest.mark.parametrize("option", [option for option in options("model") if option != "digits"])  # embench's own
def test_every_paper_model_has_what_reports_need(compose_cfg, option):
    model = compose_cfg(f"model={option}").model
    assert model.input_size in (224, 299, 331)
    assert model.source in ("torchvision", "timm", "pretrainedmodels")
    assert model.pretrained is False  # no hub is reachable: random weights by default
    assert 2012 <= model.year <= 2018
    assert 0 < model.accuracy.top1 < model.accuracy.top5 < 100 and model.accuracy.source
    assert model.paper.flops_m > 0 and model.paper.params_m > 0


def _numbers(node, prefix: str):
    """(dotted key, value) of every number under a config node, bools aside."""
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("group", ("platform", "protocol", "scenario", "farm", "backend", "top level"))
def test_every_number_in_conf_is_a_setting_checked_by_type_and_range(compose_cfg, group):
    """Each number a config file holds (model metadata aside) is declared a Range in the schema (a farm's: in its class,
    a scenario's: in its kind)."""
    from hydra.utils import get_class

    from embench.config.schema import BACKEND_RUNTIME, Range, settings
    from embench.scenarios.kinds import KINDS

    farms = [get_class(OmegaConf.load(path)["_target_"]) for path in (CONF / "farm").glob("*.yaml")]
    ranges = {**settings(), **{f"backend.runtime.{key}": value for key, value in BACKEND_RUNTIME.items()},
              **{f"farm.{key}": value for farm in farms for key, value in farm.OPTIONS.items()},
              **{f"scenario.{key}": value for kind in KINDS.values() for key, value in kind.keys.items()}}
    checked = {key for key, value in ranges.items() if isinstance(value, Range)}
    found = set()
    for option in options(group) if group != "top level" else [None]:
        cfg = OmegaConf.to_container(compose_cfg(*([f"{group}={option}"] if option else [])), resolve=True)
        node = cfg[group] if option else {key: value for key, value in cfg.items() if key != "model"}
        found |= {key for key, _ in _numbers(node, f"{group}." if option else "")}
    assert found and found <= checked, sorted(found - checked)
