"""The tamper-evident history, for outside verifiers: the audit chain checked on the
live database (``verify``). The chain itself is sealed by every transaction, in
``sync.platform.chain``."""
