import sys

from podd.cli import main

sys.exit(main())
