"""The leaf layer: what every other package may use and that imports nothing heavy (standard
library and numpy only): error types, the model descriptor, the cache folder, hashing, atomic
writes, memory sizes, printable paths and the receptive-field probes."""
