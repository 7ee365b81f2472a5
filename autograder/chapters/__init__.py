"""One module (or package) per chapter, each declaring its ASSIGNMENT and defining its
checks as `check_<name>` attributes; rnn_by_hand.checking.registry finds them here.

No chapter imports another: what they share is rnn_by_hand.common (RNN helpers) and
rnn_by_hand.checking (the framework). Modules whose names start with "_" are not chapters.
"""
