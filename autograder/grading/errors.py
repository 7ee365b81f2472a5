"""The one exception the grading code raises for a batch that cannot run.

The command line turns it into one line on stderr and exit status 2; library
callers catch it. It is never a student's score: a student's mistakes are
results, not exceptions.
"""


class GradingError(Exception):
    """The batch cannot run or finish; the message says what to fix."""
