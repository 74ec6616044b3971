"""python -m embench.report"""

from embench.report.cli import main

main()
