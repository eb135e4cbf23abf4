# Every fixture plugin is registered here: pytest accepts pytest_plugins only in the top-level conftest.
pytest_plugins = [
    "tests.fixtures.controlplane",
    "tests.fixtures.node",
    "tests.fixtures.addons",
    "tests.fixtures.operator",
    "tests.fixtures.dataplane",
    "tests.fixtures.platform",
]

# These change the whole stack, so they run after everything else, in this order: the node's
# teardown check, then README command 1 from the cache (which leaves the embedded default running).
RUN_LAST = ("tests/test_node_teardown.py", "tests/test_make_up.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return RUN_LAST.index(path) + 1 if path in RUN_LAST else 0

    items.sort(key=rank)  # stable: everything else keeps pytest's order
