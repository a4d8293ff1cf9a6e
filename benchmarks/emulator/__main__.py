"""``python -m benchmarks.emulator``: serve until SIGTERM or Ctrl-C (see ``_cli``)."""

from ._cli import main

if __name__ == "__main__":
    main()
