"""The native backend: throwaway PostgreSQL, Kafka and Kafka Connect processes on 127.0.0.1."""

from pytest_cdc.native.stack import NativeStack, start_native_stack

__all__ = ["NativeStack", "start_native_stack"]
