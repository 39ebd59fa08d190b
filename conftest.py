"""Root conftest: loads the step modules (which also gives them assertion rewriting)."""

pytest_plugins = [
    "steps.common",
    "steps.postgres_debezium",
]
