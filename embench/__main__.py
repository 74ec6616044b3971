"""python -m embench"""

from embench.cli.run import main

main()
