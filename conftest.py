"""Loads the harness plugin when the package is not installed (a bare
checkout); an installed package registers it through its entry point."""

from importlib.metadata import entry_points

if not any(ep.name == "harness" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["harness.pytest.plugin"]
