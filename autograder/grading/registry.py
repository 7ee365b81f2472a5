"""Every check, registered: the public module `rnn_by_hand.checks` imports each chapter's checks once."""
import rnn_by_hand.checks  # noqa: F401 -- fills rnn_by_hand.check.CHECKS
