"""One module per resource of the HTTP API; `api.app` mounts them all behind the bearer check."""
