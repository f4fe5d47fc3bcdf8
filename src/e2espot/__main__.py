import sys

from e2espot.cli import main

sys.exit(main())
