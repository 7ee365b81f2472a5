"""The command lines' argument parser: a bad argument is one line, not a usage block."""
import argparse


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        """One line on stderr and exit status 2, without the usage block."""
        self.exit(2, f"{self.prog}: error: {message}\n")
