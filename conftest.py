# Root conftest: registers the harness plugins and nothing else.
pytest_plugins = [
    "fixtures.target",
    "fixtures.config",
    "fixtures.endless",
    "fixtures.reporting.plugin",
    "fixtures.datera",
]
