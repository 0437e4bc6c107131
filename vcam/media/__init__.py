"""Container-level helpers for file mode (PyAV / FFmpeg): output formats
(:mod:`~vcam.media.formats`), audio pass-through (:mod:`~vcam.media.audio`), display
orientation (:mod:`~vcam.media.display`) and reading transparency back
(:mod:`~vcam.media.alpha`).

Nothing here decodes or encodes pictures for the pipeline; sources and sinks do that.
Submodules are imported where used, so importing one does not load PyAV.
"""
