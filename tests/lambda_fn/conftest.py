"""Ticket-generator tests run against the moto server of stack/moto.sh (the `moto` fixture)."""

import sys
from pathlib import Path

pytest_plugins = ["tests.fixtures.dataplane"]

# `lambda/` is a folder (a Python keyword, never a package); the Lambda package inside it is
# `ticket_generator`, imported the way the Lambda runtime does: with the folder on sys.path.
LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
if str(LAMBDA_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDA_DIR))
