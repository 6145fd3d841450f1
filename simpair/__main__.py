"""``python -m simpair``: the same as the ``simpair`` command."""
from simpair.cli import main

if __name__ == "__main__":
    main()
