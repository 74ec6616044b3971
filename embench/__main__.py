"""python -m embench"""

from embench.app import main

main()
