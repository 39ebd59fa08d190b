"""The one seam between features and services: a Stack hands out endpoints, never processes.

* :mod:`.base` — :class:`Stack` (endpoints, restart/kill/logs), :class:`StackInfo`,
  :class:`Backend` (what starts a stack and names its versions), the component names;
* :mod:`.probes` — readiness checks that need only endpoints (SQL, Kafka metadata, HTTP, TCP);
* :mod:`.native` — the native backend: throwaway local processes.

:class:`~cdc_support.endpoints.Endpoints` lives in ``cdc_support`` (no pytest needed to read
one) and is re-exported here.
"""

from cdc_support.endpoints import Endpoints
from pytest_cdc.stack.base import Backend, Stack, StackInfo, component_names

__all__ = ["Backend", "Endpoints", "Stack", "StackInfo", "component_names"]
