"""python -m rnn_by_hand: the same command as `rnn-by-hand` (see rnn_by_hand.cli)."""
import sys

from rnn_by_hand.cli import main

if __name__ == "__main__":
    sys.exit(main())
