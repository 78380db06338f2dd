import sys

from symloss.cli import main

sys.exit(main())
