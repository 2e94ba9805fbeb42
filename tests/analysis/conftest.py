"""One BLAS thread for the analysis tests (set before numpy loads, if it has not yet).

scipy's L-BFGS-B, the reference these tests compare against, makes BLAS calls on 5-vectors;
with OpenBLAS threads each costs milliseconds on a busy 2-core machine. The fitter is faster
single-threaded too (flopsfit/analyze.py sets the same).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
