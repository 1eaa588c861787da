"""sfgraph: unsupervised vocal-ensemble separation as graphs of nodes."""
from .threads import wait_passively

wait_passively()  # before anything imports torch: see sfgraph.threads
