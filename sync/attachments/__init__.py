"""Attachments: the photos, scans and recordings that prove field records, kept by
the SHA-256 of their bytes in a local folder or an S3-compatible store."""
