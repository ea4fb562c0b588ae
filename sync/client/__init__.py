"""The reference device client: what a tablet does, in Python, over HTTP."""
