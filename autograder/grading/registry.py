"""Import every chapter's check module so that autograder.CHECKS is complete."""
import importlib
import pkgutil

import autograder

NOT_CHECKS = {"course", "check", "compare", "__main__"}
for info in pkgutil.iter_modules(autograder.__path__):
    if not info.ispkg and info.name not in NOT_CHECKS:
        importlib.import_module(f"autograder.{info.name}")
