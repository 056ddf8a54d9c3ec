"""Run a worker: `python worker.py` (or `billing worker`). Filled in with the workflows."""
