"""CUDA pre/post-processing kernel sources (package data). upres.gpu compiles them with NVRTC
(`upres.gpu.kernel_compile`) and launches them (`upres.gpu.kernel_launch`); the numpy
definitions they must match are the tests' oracle (tests/cuda_reference.py)."""
