pytest_plugins = [
    "tests.fixtures.controlplane",
    "tests.fixtures.operator",
]
