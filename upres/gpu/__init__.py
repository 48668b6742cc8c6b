"""GPU runtime: CUDA through cuda-python, TensorRT engines and their cache, the stream pipeline.

Nothing here imports a GPU library at module import time, so the CLI, the planner and the tests
load on machines without CUDA; each GPU library is imported by the one module that needs it.
"""
