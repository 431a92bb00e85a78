"""Script form of ``python -m alignedreid.train_cli`` for launchers that take a script path (msrun)."""
from alignedreid.train_cli import main

if __name__ == "__main__":
    main()
