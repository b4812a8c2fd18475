"""Entry point: ``python site.py --help``. The code lives in the sitegen package."""

import atexit
import gc

from sitegen.cli import main

if __name__ == "__main__":
    # When the process ends, Python runs one more cycle collection over every
    # object left, such as a freeze's state: tens of milliseconds for nothing.
    atexit.register(gc.freeze)
    main()
