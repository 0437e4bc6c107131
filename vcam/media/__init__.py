"""Media helpers shared by the modes: the one container decoder (:mod:`~vcam.media.reader`,
PyAV / FFmpeg), output formats (:mod:`~vcam.media.formats`), audio pass-through
(:mod:`~vcam.media.audio`), display orientation (:mod:`~vcam.media.display`), reading
transparency back (:mod:`~vcam.media.alpha`), hidden temporary outputs
(:mod:`~vcam.media.paths`) and video devices (:mod:`~vcam.media.devices`).

Nothing here encodes pictures; the sinks do that.
Submodules are imported where used, so importing one does not load PyAV.
"""
