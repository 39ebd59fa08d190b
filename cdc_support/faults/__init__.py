"""Faults as features: a workload whose every change has an identity, and what faults cost.

* :mod:`.workload` — :class:`~.workload.SequencedWorkload`: single-row autocommit operations
  numbered 1..n on a table ``(id, seq, payload)`` of PostgreSQL or MariaDB (operation n sets
  ``seq = n`` or deletes a row), written in a thread that survives the database being
  restarted or killed, with an exact log of what committed and the outage windows;
* :mod:`.matrix` — the HTML matrix of fault x approach: delivered, lost, duplicated, tables
  equal, time to recover, the guarantee;
* :mod:`.timeline` — per fault, events per second and lag around it, as a plot.

What a consumer delivered is audited against the workload's log by
:class:`cdc_support.checks.delivery.DeliveryAudit` (lost, duplicated, unexpected changes).
"""
