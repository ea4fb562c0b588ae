"""Routes, one module per domain; ``api.app`` mounts them under ``/api/v1``."""
