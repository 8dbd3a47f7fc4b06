import sys

from tagsight.cli import main

sys.exit(main())
