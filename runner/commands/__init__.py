"""The bodies of the CLI commands that do more than print one thing (runner.cli stays a thin shell)."""
