"""The HTTP skin: thin routes that resolve dependencies, call one service, return a typed model."""
