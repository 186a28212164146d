"""`python -m mapper` runs the jetson-mapper command line."""

from mapper.cli import main

raise SystemExit(main())
