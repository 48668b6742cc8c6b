"""Text, stamp and blemish removal (`upres clean`): mask -> grow -> fill -> texture -> blend.

Every stage is a small module with one job; :mod:`upres.cleaning.pipeline` strings them together
per region of the mask, and :mod:`upres.cli.commands.clean` is the command line.
"""
