"""sfgraph: unsupervised vocal-ensemble separation as graphs of nodes."""
