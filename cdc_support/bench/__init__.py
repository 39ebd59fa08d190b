"""Benchmarks (``make bench``): throughput and latency of each approach, measured on this machine.

Each module here measures one approach on real components and has ``main(argv) -> int``
printing a readable table (``python -m cdc_support.bench.<name> --help``). The runner
``python -m pytest_cdc.bench`` runs them all — starting a native stack for those that need
servers — and writes each table to ``reports/bench/<name>.txt``. Nothing here asserts a
speed: the numbers are for reading, comparing and quoting.
"""

BENCHMARKS = ("binlog", "delta", "iceberg", "pg_approaches", "sink")
