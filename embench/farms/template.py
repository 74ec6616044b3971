"""The job template: imported last by the fork server `farm=local` starts jobs from (multiprocessing's
forkserver, which imports embench.farms.local.TEMPLATE_IMPORTS once per sweep).

At import it notes which library pages the template has resident. A forked job maps no file page until it
touches it, so it faults these in first (embench.memory.fault_in): its resident set then counts the
libraries a freshly started process counts, and its memory figures mean what they mean everywhere else.
The objects of the imports are frozen out of the garbage collector's reach: a job's collections (before its
memory peak is reset, after it measured) walk only what the job made, 1 ms instead of 0.2 s. And the template
ends at once when the sweep has gone, rather than spend a second tearing torch down while it holds the sweep's
output open (a `| tee` would wait for it); its jobs end through os._exit and never run this.
"""

import atexit
import gc
import os

from embench import memory

RESIDENT_PAGES = memory.resident_file_pages()
gc.collect()
gc.freeze()
atexit.register(os._exit, 0)
