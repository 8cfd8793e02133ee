import sys

from profilestream.cli import main

sys.exit(main())
