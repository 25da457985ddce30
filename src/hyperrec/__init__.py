"""hyperrec.

Before any library loads MKL: ask it for run-to-run reproducible BLAS (results independent of memory alignment
and of MKL adjusting its thread count), so that the same seed and thread count train the same weights on an
idle or a busy machine. ``setdefault``: a value the user exported wins.
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
