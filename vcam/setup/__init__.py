"""Setup: vcam doctor, vcam install-service and vcam config (the starter config file)."""
