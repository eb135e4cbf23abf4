# Every fixture plugin is registered here: pytest accepts pytest_plugins only in the top-level conftest.
pytest_plugins = [
    "tests.fixtures.controlplane",
    "tests.fixtures.operator",
    "tests.fixtures.dataplane",
]
