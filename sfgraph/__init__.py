"""sfgraph: unsupervised vocal-ensemble separation as graphs of nodes."""
from sfgraph.threads import numpy_blas_on_one_thread, wait_passively

wait_passively()  # before anything imports torch or numpy: see sfgraph.threads
numpy_blas_on_one_thread()
