"""CUDA pre/post-processing kernels, compiled at run time with NVRTC (see `compile`), launched
through the driver API (see `launch`); `reference` holds the numpy definitions they must match."""
