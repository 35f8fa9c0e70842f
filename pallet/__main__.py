"""`python -m pallet ...` runs the same command line as the `pallet` script."""
from pallet.cli import main

if __name__ == "__main__":
    main()
