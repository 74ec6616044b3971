"""python -m embench.report: the paper's figures and tables for the runs of one MLflow experiment."""

import argparse
import os
import sys
from pathlib import Path

from embench import credentials
from embench.artifacts import can_create

PROG = "embench.report"
DESCRIPTION = """\
Reads the runs of an MLflow experiment and writes, into --output, report.html (self-contained,
figures embedded) plus every figure as PNG, SVG and CSV and every table as CSV: runtime against
FLOPs (the paper's Figure 1), throughput against batch size (Figure 2), accuracy against
inferences/s with the Pareto front (Figure 3: measured top-1 where a run has it, else published),
time per layer category (Figure 4), achieved GFLOP/s, Table 1 from the measurements, speed-ups
between platforms/backends, best and largest batches, and every failed or unstable run; with
server-scenario runs, p99 query latency against offered load (Figure 6), with co-location runs,
each network's latency alone and together, and with accuracy runs, accuracy through each backend. The folder is
then logged to MLflow: under report/ of the sweep's parent run when all selected runs come from
one sweep, else of a new run `report <time>` tagged embench.report=true (later reports skip such
runs)."""
EPILOG = """\
filters take comma lists and repeat (--model resnet18,vgg16 --model alexnet); different filters
combine with AND. Several successful runs of one point (label, model, batch) are folded: the latest
one, or the median of each metric; the report says which and how many. A label is platform/backend
plus every setting (run param under platform., backend., protocol., scenario., or seed) that differs
between its runs, e.g. `cpu/openvino precision=bf16`, so different configurations are never folded
together.

examples:
  python -m embench.report --experiment embench --output report
  python -m embench.report --experiment embench --output r --platform cpu --batch 1,2,4 --aggregate median
  python -m embench.report --experiment embench --output r --tag host_busy=false --no-log-to-mlflow

exit codes: 0 report written (and logged); 2 bad input: no such experiment, no (matching) runs, no
store at a local URI; 3 MLflow unreachable, or logging the report failed (the files are kept)."""


def _split(values: list[str] | None) -> list[str]:
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default=os.environ.get("MLFLOW_EXPERIMENT_NAME", "embench"),
                        help="MLflow experiment name (default: $MLFLOW_EXPERIMENT_NAME, else embench)")
    parser.add_argument("--output", default="report", type=Path, help="folder to write into (default: ./report)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                                               "sqlite:///mlflow.db in the current directory, embench's default)")
    parser.add_argument("--model", action="append", metavar="M[,M...]", help="only these models")
    parser.add_argument("--platform", action="append", metavar="P[,P...]", help="only these platforms (e.g. cpu,cuda)")
    parser.add_argument("--backend", action="append", metavar="B[,B...]", help="only these backends (e.g. torch)")
    parser.add_argument("--protocol", action="append", metavar="P[,P...]", help="only these protocols")
    parser.add_argument("--batch", action="append", metavar="N[,N...]", help="only these batch sizes")
    parser.add_argument("--tag", action="append", metavar="KEY=VALUE",
                        help="only runs with this MLflow tag, e.g. host_busy=false, unstable=false, device.type=cuda")
    parser.add_argument("--aggregate", choices=("latest", "median"), default="latest",
                        help="several successful runs of one point: the latest run, or the median of each metric "
                             "(default: latest)")
    parser.add_argument("--log-to-mlflow", action=argparse.BooleanOptionalAction, default=True,
                        help="log the report folder as MLflow artifacts (default: on)")
    return parser


def _filters(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from embench.report.selection import Filters

    tags = {}
    for item in _split(args.tag):
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--tag {item!r}: expected KEY=VALUE, e.g. --tag host_busy=false")
        tags[key.removeprefix("tags.")] = value
    batches = _split(args.batch)
    bad = [b for b in batches if not (b.isdigit() and int(b) > 0)]
    if bad:
        parser.error(f"--batch {','.join(bad)}: batch sizes are positive integers, e.g. --batch 1,8")
    return Filters(models=_split(args.model), platforms=_split(args.platform), backends=_split(args.backend),
                   protocols=_split(args.protocol), batches=[int(b) for b in batches], tags=tags)


def _error(message: str, code: int) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _check_output(out_dir: Path) -> None:
    """--output must be a folder this user can write, checked before anything is read."""
    if out_dir.exists() and not out_dir.is_dir():
        _error(f"--output {out_dir} is a file; give a folder for the report (created if missing)", 2)
    if not can_create(out_dir):
        _error(f"--output {out_dir} cannot be written (permission denied or read-only); give a folder you can write", 2)


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    filters = _filters(parser, args)
    from embench.report.load import load
    from embench.report.store import ReportError, tracking_uri

    if args.tracking_uri is not None and not args.tracking_uri.strip():
        _error("--tracking-uri '' is empty: give a store, e.g. sqlite:///mlflow.db or http://127.0.0.1:5000", 2)
    _check_output(args.output)
    uri = credentials.move_to_environment(tracking_uri(args.tracking_uri))
    try:
        sel = load(uri, args.experiment, filters, args.aggregate)
        from embench.report.build import build

        path = build(sel, args.output)
        print(f"report: {path.resolve()} ({len(sel.points)} points from {len(sel.runs)} runs; aggregate "
              f"{sel.aggregate}, {sel.folded} duplicate(s) folded; {int((sel.runs['status'] != 'ok').sum())} "
              f"failed run(s) listed)")
        if args.log_to_mlflow:
            from embench.report.publish import publish
            from embench.report.store import connect

            run_id, what = publish(connect(uri), sel, args.output)
            print(f"logged to MLflow: run {run_id} ({what}), artifacts report/, experiment {sel.experiment!r} at {uri}")
    except ReportError as err:
        _error(str(err), err.exit_code)
    except KeyboardInterrupt:
        _error("interrupted (Ctrl-C)", 130)
