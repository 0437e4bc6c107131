"""File mode (vcam process): one file, a batch, sequential or in worker processes."""
