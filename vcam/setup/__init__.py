"""Setup: vcam doctor and vcam install-service."""
