"""`upres studio`: a local review workspace over a folder of scans.

Detect, correct the mask, try a fill, compare, upscale and accept, in one browser page served from
this machine. Everything it computes goes through the same functions as `upres clean`, so an
accepted image's files are byte for byte what `upres clean --mask SAVED --then-upscale ...` writes.
Layers: ``workspace`` (files and progress), ``edits`` (masks and strokes), ``session`` (one open
image), ``engines`` (networks and chains), ``preview`` / ``accept`` (the work), ``server`` (HTTP).
"""
