"""embench.report: the paper's figures and tables from the runs of an MLflow experiment.

    python -m embench.report --experiment embench --output report

load.py reads the runs into a DataFrame: store.py reads them from MLflow, selection.py tidies, filters
and labels them and folds duplicates. figures.py draws Figures 1-4 (and achieved GFLOP/s), tables.py
computes Table 1, speed-ups, best and largest batches, accuracy through each backend and the failed or
unstable runs, html.py writes report.html, publish.py logs the folder to MLflow and cli.py is the command line. Nothing heavy is imported here, so `--help` stays fast.
"""
