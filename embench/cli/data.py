"""`embench data DATASET DIR`: writes a labelled dataset that installs with embench, as torchvision's ImageFolder.

    embench data digits DIR      # DIR/train/<digit>/NNNN.png (1,000 images), DIR/test/<digit>/NNNN.png (797)
"""

import argparse
import shlex
import sys
from pathlib import Path

from embench import outcome
from embench.errors import EmbenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        outcome.say_error(f"embench data: {message} (see embench data --help)")
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="embench data",
        description="Write a labelled dataset that comes with embench as an ImageFolder (one folder per class), for "
                    "accuracy=imagefolder.",
        epilog="exit codes: 0 written; 2 an unknown dataset, or DIR is a file, not empty, or cannot be written.",
    )
    datasets = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET",
                                     parser_class=_Parser, title="datasets")
    digits = datasets.add_parser(
        "digits", help="scikit-learn's handwritten digits: 1,797 real 8x8 grey images of 10 digits, split "
                       "(stratified, seed 0) into train (1,000: calibration) and test (797: evaluation)",
        description="Write scikit-learn's digits to DIR/train/<digit>/<sample>.png and DIR/test/<digit>/<sample>.png "
                    "(<sample>: the image's index in sklearn.datasets.load_digits).",
    )
    digits.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")
    return parser


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    from embench.digits import export  # imported here: --help and a bad argument stay fast

    try:
        counts = export(args.dir)
    except EmbenchError as err:
        outcome.say_error(str(err))
        sys.exit(err.exit_code)
    root = shlex.quote(str(args.dir))
    print(f"embench: wrote {sum(counts.values()):,} images (train {counts['train']:,}, test {counts['test']:,}) of "
          f"sklearn's digits to {args.dir}; measure accuracy with: python -m embench model=digits "
          f"accuracy=imagefolder accuracy.root={root}/test accuracy.calibration_root={root}/train")
