"""`upres bench`: upres side by side with what its users would otherwise run, and the machine's limit.

Contenders (upres run path, the PyTorch eager tiling loop, OpenCV dnn_superres, bicubic) share one
tiny interface (`upscale(u8 RGB) -> u8 RGB`), run on the same images with the same thread count,
each in its own process so peak RSS belongs to it, and take turns pass by pass so a load change on
the machine hits every contender alike. Nothing here imports torch at module level.

Entry points: `upres.bench.runner.run_bench(BenchConfig)` and the CLI command
`upres.cli.commands.bench.bench_command`. This package module imports nothing, so a worker process
loads only what its contender needs.
"""
