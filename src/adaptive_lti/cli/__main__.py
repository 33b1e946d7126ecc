import sys

from adaptive_lti.cli import main

sys.exit(main())
