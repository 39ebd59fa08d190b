"""The native backend: throwaway PostgreSQL, MariaDB, Kafka and Connect processes on 127.0.0.1."""

from pytest_cdc.stack.native.stack import NativeBackend, NativeStack, start_native_stack

__all__ = ["NativeBackend", "NativeStack", "start_native_stack"]
