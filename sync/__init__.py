"""The sync engine: storage, authentication and the sync protocol, with no HTTP in it.

Dependencies point one way: ``schemas`` <- ``sync`` <- ``api``. Nothing here imports
FastAPI or ``api``; a test walks the imports to keep it so.
"""
