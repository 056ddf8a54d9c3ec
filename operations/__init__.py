"""What the billing system, the CLI and the demo ask of the engine: one function per command,
shared by the HTTP API and the CLI so both validate and act the same way."""
