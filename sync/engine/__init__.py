"""The sync engine: push, pull, merges, conflicts, the change log, and the devices' sync health.

It knows no record type by name. What it needs of each — its table, fields, scope,
parents and rules — it is given as a catalog of ``EntitySpec`` (``sync.catalog``
builds the catalog from the field domains). It may import ``schemas``, ``sync.platform``
and ``sync.accounts``; never a field domain.
"""
