import sys

from gatespec.cli import main

sys.exit(main())
