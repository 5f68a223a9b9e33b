"""The hubbub server: workers, supervisor and CLI."""
