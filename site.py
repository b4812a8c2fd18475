"""Entry point: ``python site.py --help``. The code lives in the sitegen package."""

from sitegen.cli import main

if __name__ == "__main__":
    main()
