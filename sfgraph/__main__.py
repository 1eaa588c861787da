import sys

from sfgraph.cli import main

sys.exit(main())
