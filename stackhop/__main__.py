import sys

from stackhop.cli.main import main

sys.exit(main())
