"""Topic-manager tests run against the real broker of stack/kafka.sh (the `kafka` fixture)."""

import sys
from pathlib import Path

# The data-plane fixtures are imported rather than named in `pytest_plugins`, which pytest accepts
# only in the top-level conftest (a whole-suite run fails to collect otherwise).
from tests.fixtures.dataplane import kafka  # noqa: E402,F401

# `operator/` is a folder holding the package; the editable install maps it too, this is a fallback
# for a venv installed before the package existed.
_OPERATOR_DIR = str(Path(__file__).resolve().parents[2] / "operator")
try:
    import ticketplatform_operator.topics  # noqa: F401
except ImportError:
    sys.path.insert(0, _OPERATOR_DIR)
