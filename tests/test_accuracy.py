"""accuracy=imagefolder: top-1 on labelled images through the backend that was timed, its intervals, its
difference from torch eager FP32, and every bad input refused before anything is measured."""

import csv
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import PLUGINS, cli_env, only_result, results, runs_of
from mlflow import MlflowClient
from PIL import Image

from embench import names
from embench.accuracy.intervals import mcnemar_exact_p, paired_difference, wilson

COLOURS = {"red": 0, "green": 1, "blue": 2}  # RGB channel; classes are the folders in sorted order: blue, green, red
IMAGES_PER_COLOUR = 12


def colour_images(folder: Path, per_colour: int, seed: int) -> Path:
    """Noisy images, each with one dominant RGB channel, in folders named by that colour."""
    rng = np.random.default_rng(seed)
    for colour, channel in COLOURS.items():
        (folder / colour).mkdir(parents=True)
        for index in range(per_colour):
            pixels = rng.integers(0, 100, (20, 20, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, (20, 20))
            Image.fromarray(pixels).save(folder / colour / f"{index}.png")
    return folder


def colour_conf(folder: Path, classes: int = 3) -> Path:
    """A config folder with the hand-set colour network (tests/plugins/colour_net.py) as model=colour."""
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "colour.yaml").write_text(
        f"name: colour\nyear: 2026\ninput_size: 16\nsource: embench\npretrained: true\n"
        f"factory:\n  _target_: colour_net.colour_net\n  num_classes: {classes}\n"
        "preprocess: {crop_pct: 1.0, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}\n"
        "accuracy: {top1: 100.0, top5: 100.0, source: hand-set weights}\npaper: null\n")
    return folder


def embench(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embench", *args], cwd=folder, capture_output=True, text=True,
                          env=cli_env(folder, PYTHONPATH=PLUGINS), timeout=timeout)


def predictions(run_dir: Path) -> list[dict]:
    with (run_dir / "accuracy_predictions.csv").open() as handle:
        return list(csv.DictReader(handle))


# --- the statistics, against their known coverage -------------------------------------------------------------

def test_wilson_interval_covers_a_known_accuracy_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true, total = 0.9, 200
    covered = [low <= true <= high for low, high in (wilson(int(k), total) for k in rng.binomial(total, true, 4000))]
    assert 0.93 <= np.mean(covered) <= 0.975


def test_paired_interval_covers_a_known_difference_also_with_few_discordant_images():
    """Images where the run alone is right (p_gained) and where the reference alone is (p_lost), drawn from a known
    multinomial: the interval must cover the true difference 95 % of the time, where a bootstrap would collapse."""
    rng = np.random.default_rng(1)
    for p_gained, p_lost, total in ((0.01, 0.03, 500), (0.002, 0.002, 500), (0.05, 0.02, 100)):
        draws = rng.multinomial(total, [p_gained, p_lost, 1 - p_gained - p_lost], size=4000)
        covered = []
        for gained, lost, _ in draws:
            difference, low, high = paired_difference(int(gained), int(lost), total)
            assert low <= difference <= high
            covered.append(low <= p_gained - p_lost <= high)
        assert np.mean(covered) >= 0.93, (p_gained, p_lost, total)


def test_mcnemar_exact_p_values():
    assert mcnemar_exact_p(0, 6) == pytest.approx(2 * 0.5**6)  # all six discordant images one way
    assert mcnemar_exact_p(3, 3) == pytest.approx(1.0)
    assert mcnemar_exact_p(0, 0) == 1.0


# --- the dominant-colour network: label order and preprocessing -----------------------------------------------

@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return colour_images(tmp_path_factory.mktemp("colours") / "images", IMAGES_PER_COLOUR, seed=0)


@pytest.mark.parametrize("permuted, expected", [(False, 100.0), (True, 0.0)])
def test_a_network_that_reads_the_dominant_colour_scores_all_or_none(tmp_path, colours, permuted, expected):
    """Hand-set weights name each image's colour: right label order and preprocessing score 100 %; each class moved
    to the next channel scores 0 %."""
    conf = colour_conf(tmp_path / "conf")
    proc = embench(tmp_path, "--config-dir", str(conf), "model=colour", "accuracy=imagefolder",
                   f"accuracy.root={colours}", "protocol=quick", "tracking.enabled=false", "batch=5",
                   f"+model.factory.permuted={str(permuted).lower()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = only_result(tmp_path)
    metrics = result["metrics"]
    assert metrics["accuracy_top1"] == expected
    assert metrics["accuracy_samples"] == 3 * IMAGES_PER_COLOUR
    assert "accuracy_top5" not in metrics  # three classes: top-5 says nothing
    assert metrics["accuracy_top1_ci95_low"] <= expected <= metrics["accuracy_top1_ci95_high"]
    assert "accuracy_top1_delta" not in metrics  # torch eager FP32 on the CPU is the reference itself
    [run_dir] = tmp_path.glob("outputs/runs/*")
    rows = predictions(run_dir)
    assert len(rows) == 3 * IMAGES_PER_COLOUR  # batch 5 does not divide 36: the padded last step is dropped
    for row in rows:
        assert int(row["label"]) == sorted(COLOURS).index(row["image"].split("/")[0])
        assert (row["top1"] == row["label"]) is not permuted


@pytest.mark.slow  # two runs, one through ONNX Runtime
def test_limit_takes_the_same_seeded_images_on_every_backend(tmp_path, colours):
    conf = colour_conf(tmp_path / "conf")
    base = ["--config-dir", str(conf), "model=colour", "accuracy=imagefolder", f"accuracy.root={colours}",
            "accuracy.limit=10", "protocol=quick", "tracking.enabled=false"]
    assert embench(tmp_path, *base).returncode == 0
    proc = embench(tmp_path, *base, "backend=onnxruntime")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(tmp_path.glob("outputs/runs/*"), key=lambda path: "onnxruntime" in path.name)
    images = [[row["image"] for row in predictions(run)] for run in runs]
    assert images[0] == images[1] and len(images[0]) == 10
    assert len({image.split("/")[0] for image in images[0]}) > 1  # shuffled: not the first folder's ten
    onnx = next(r for r in results(tmp_path) if r["params"]["backend"] == "onnxruntime")["metrics"]
    assert (onnx["accuracy_top1"], onnx["accuracy_top1_delta"], onnx["accuracy_top1_agreement"]) == (100.0, 0.0, 100.0)


# --- bad input: one line, exit 2, nothing measured ----------------------------------------------------------------

def bad_folders(root: Path, colours: Path) -> dict[str, Path]:
    made = {name: root / name for name in ("empty", "flat", "no_images", "broken", "four", "calibration")}
    made["empty"].mkdir()
    made["flat"].mkdir()
    Image.new("RGB", (8, 8)).save(made["flat"] / "a.png")
    (made["no_images"] / "red").mkdir(parents=True)
    (made["no_images"] / "red" / "notes.txt").write_text("no image here")
    (made["broken"] / "red").mkdir(parents=True)
    (made["broken"] / "red" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    colour_images(made["four"], 1, seed=2)
    (made["four"] / "yellow").mkdir()
    Image.new("RGB", (8, 8), (255, 255, 0)).save(made["four"] / "yellow" / "0.png")
    (root / "map.json").write_text('{"red": 0}')
    (root / "synsets.txt").write_text("blue the colour of the sky\ngreen\nred\n")
    return made


BAD = [  # (accuracy arguments; {} is the temporary folder), words the error line must contain
    ([], ["accuracy.root is not set"]),
    (["accuracy.root={}/missing"], ["accuracy.root={}/missing", "no such folder"]),
    (["accuracy.root={}/map.json"], ["is a file, not a folder"]),
    (["accuracy.root={}/empty"], ["accuracy.root={}/empty is empty", "ImageFolder layout"]),
    (["accuracy.root={}/flat"], ["accuracy.root={}/flat has no class sub-folders"]),
    (["accuracy.root={}/no_images"], ["class folder 'red' has no images"]),
    (["accuracy.root={}/broken"], ["{}/broken/red/truncated.png is not a readable image"]),
    (["accuracy.root={}/four"], ["accuracy.root={}/four has 4 classes, more than the model's 3 outputs"]),
    (["accuracy.root={}/colours", "accuracy.class_map={}/none.json"], ["accuracy.class_map={}/none.json: no such file"]),
    (["accuracy.root={}/colours", "accuracy.class_map={}/map.json"], ["has no class for folder 'blue'"]),
    (["accuracy.root={}/colours", "model.pretrained=false"], ["needs trained weights", "model.pretrained=true"]),
    (["accuracy.root={}/colours", "accuracy.calibration_root={}/colours/red"],
     ["accuracy.calibration_root={}/colours/red overlaps accuracy.root={}/colours"]),
    (["accuracy.root={}/colours", "accuracy.limit=0"], ["accuracy.limit=0", "integer from 1"]),
    (["accuracy.root={}/colours", "model.preprocess.std=[0.5,0,0.5]"], ["model.preprocess.std=[0.5, 0, 0.5]", "above 0"]),
]


@pytest.mark.parametrize("cases", [pytest.param(BAD[:4], id="the-folder"),  # the rest, 10 more runs: slow suite
                                   pytest.param(BAD[4:], id="images-classes-settings", marks=pytest.mark.slow)])
def test_bad_accuracy_input_is_refused_in_one_line_before_anything_runs(tmp_path, colours, cases):
    bad_folders(tmp_path, colours)
    (tmp_path / "colours").symlink_to(colours)
    conf = colour_conf(tmp_path / "conf")

    def refuse(case) -> subprocess.CompletedProcess:
        index, (args, _) = case
        folder = tmp_path / f"run{index}"
        folder.mkdir()
        return embench(folder, "--config-dir", str(conf), "model=colour", "accuracy=imagefolder", "protocol=quick",
                       *(arg.replace("{}", str(tmp_path)) for arg in args))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(refuse, enumerate(cases)))
    for (args, needles), proc in zip(cases, answers):
        errors = [line for line in proc.stderr.splitlines() if line.startswith("embench: error:")]
        assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
        for needle in needles:
            assert needle.replace("{}", str(tmp_path)) in errors[0], (args, errors[0])
    assert not list(tmp_path.glob("run*/outputs/**/result.json"))  # nothing measured


@pytest.mark.slow  # two runs
def test_a_class_map_in_imagenets_synset_format_sets_each_folders_class(tmp_path, colours):
    """Line i of the file names the folder of class i: here blue 0, green 1, red 2, as the network reads them."""
    (tmp_path / "synsets.txt").write_text("blue the colour of the sky\ngreen\nred\n")
    conf = colour_conf(tmp_path / "conf")
    proc = embench(tmp_path, "--config-dir", str(conf), "model=colour", "accuracy=imagefolder", f"accuracy.root={colours}",
                   f"accuracy.class_map={tmp_path / 'synsets.txt'}", "protocol=quick", "tracking.enabled=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert only_result(tmp_path)["metrics"]["accuracy_top1"] == 100.0
    (tmp_path / "reversed.json").write_text('{"red": 0, "green": 1, "blue": 2}')
    for run in tmp_path.glob("outputs"):
        subprocess.run(["rm", "-rf", str(run)], check=True)
    proc = embench(tmp_path, "--config-dir", str(conf), "model=colour", "accuracy=imagefolder", f"accuracy.root={colours}",
                   f"accuracy.class_map={tmp_path / 'reversed.json'}", "protocol=quick", "tracking.enabled=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert only_result(tmp_path)["metrics"]["accuracy_top1"] == pytest.approx(100 / 3)  # green alone keeps its class


# --- the digits network through torch FP32 and INT8 backends, against an independent count --------------------

def independent_digits_count(test_folder: Path) -> tuple[int, int]:
    """Correct top-1 predictions of the committed digits network over the test PNGs, by a plain torch loop that
    reads the images itself (grey / 255, normalised to -1..1, on three channels): (correct, images)."""
    import torch

    from embench.digits import digits_net

    model = digits_net(pretrained=True).eval()
    correct = total = 0
    for path in sorted(test_folder.glob("*/*.png")):
        grey = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32)) / 255
        image = ((grey - 0.5) / 0.5).expand(1, 3, 8, 8)
        with torch.inference_mode():
            correct += int(model(image).argmax(1).item() == int(path.parent.name))
        total += 1
    return correct, total


@pytest.mark.slow  # three INT8 conversions and a sweep: about a minute
def test_digits_accuracy_through_torch_fp32_and_two_int8_backends(tmp_path):
    data = tmp_path / "digits"
    assert embench(tmp_path, "data", "digits", str(data)).returncode == 0
    correct, total = independent_digits_count(data / "test")
    accuracy = ["model=digits", "accuracy=imagefolder", f"accuracy.root={data / 'test'}",
                f"accuracy.calibration_root={data / 'train'}", "protocol=quick"]
    proc = embench(tmp_path, *accuracy)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = embench(tmp_path, "-m", *accuracy, "backend=onnxruntime,openvino", "backend.runtime.precision=int8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {(r["params"]["backend"], r["params"]["backend.runtime.precision"]): r for r in results(tmp_path)}
    assert set(runs) == {("torch", "fp32"), ("onnxruntime", "int8"), ("openvino", "int8")}

    fp32 = runs["torch", "fp32"]["metrics"]
    assert fp32["accuracy_top1"] == pytest.approx(100 * correct / total) and fp32["accuracy_samples"] == total == 797
    assert fp32["accuracy_top1_ci95_low"] < 100 * correct / total < fp32["accuracy_top1_ci95_high"]
    caches = []
    for key in (("onnxruntime", "int8"), ("openvino", "int8")):
        run = runs[key]
        metrics, tags = run["metrics"], run["tags"]
        assert tags["backend.precision"] == "int8" and "real images" in tags["accuracy.calibration"]
        [run_dir] = [path.parent for path in tmp_path.glob("outputs/**/result.json")
                     if (path.parent / "accuracy_predictions.csv").exists() and key[0] in path.parent.name]
        rows = predictions(run_dir)
        recount = sum(row["top1"] == row["label"] for row in rows)
        assert metrics["accuracy_top1"] == pytest.approx(100 * recount / total), key
        assert metrics["accuracy_reference_top1"] == pytest.approx(100 * correct / total), key  # the torch loop's
        agree = sum(row["top1"] == row["reference_top1"] for row in rows)
        assert metrics["accuracy_top1_agreement"] == pytest.approx(100 * agree / total), key
        delta = metrics["accuracy_top1_delta"]
        assert delta == pytest.approx(metrics["accuracy_top1"] - metrics["accuracy_reference_top1"])
        assert abs(delta) <= 100 - metrics["accuracy_top1_agreement"] + 1e-9  # a changed verdict needs a changed class
        assert metrics["accuracy_top1_delta_ci95_low"] <= delta <= metrics["accuracy_top1_delta_ci95_high"]
        assert abs(delta) < 3, key  # calibrated on real digits, INT8 keeps the FP32 network's accuracy
        caches.append(tags["accuracy.reference"].rsplit("cache ", 1)[1].rstrip(")"))
    assert sorted(caches) == ["hit", "miss"]  # one reference for the sweep over backends
    logged_names = [value for constant, value in vars(names).items() if constant.startswith("ACCURACY_")]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in runs_of(client):
        if run.data.params.get("backend.runtime.precision") == "int8":  # every name the report reads, in MLflow
            assert {n for n in logged_names if n not in run.data.metrics and n not in run.data.tags} == set()
