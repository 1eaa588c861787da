"""``python -m sfgraph.train`` (and ``torchrun … -m sfgraph.train``): the same as ``sfgraph train``."""
import sys

from sfgraph.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
