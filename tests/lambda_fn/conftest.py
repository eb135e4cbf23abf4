"""Ticket-generator tests run against the moto server of stack/moto.sh (the `moto` fixture)."""

import sys
from pathlib import Path

# The data-plane fixtures are imported rather than named in `pytest_plugins`, which pytest accepts
# only in the top-level conftest (a whole-suite run fails to collect otherwise).
from tests.fixtures.dataplane import moto  # noqa: E402,F401

# `lambda/` is a folder (a Python keyword, never a package); the Lambda package inside it is
# `ticket_generator`, imported the way the Lambda runtime does: with the folder on sys.path.
LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
if str(LAMBDA_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDA_DIR))
