"""sfgraph: unsupervised vocal-ensemble separation as graphs of nodes."""
from sfgraph.threads import wait_passively

wait_passively()  # before anything imports torch: see sfgraph.threads
