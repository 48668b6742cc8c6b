"""Which nodes to keep in float: the image path (by structure) and the most sensitive layers (measured).

Structure: the model's output should not pass through an 8-bit tensor when the runtime rounds it to
8 bits again, and a skip branch that carries the image itself from the input to the output (the
bicubic base of CoarseSR) carries the whole signal, not a small correction. Both are cheap ops.

Measurement: each weighted layer is quantized alone and the model scored against FP32 on held-out
crops; the worst layers are then kept in float, fewest first, until the whole model is within the
PSNR budget against the ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import onnx

from upres.calibration.accuracy import Accuracy
from upres.calibration.report import LayerCost

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Ops that only move values around: the output is still 8-bit if one of these produces it.
LAYOUT_OPS = ("DepthToSpace", "SpaceToDepth", "Reshape", "Transpose", "Identity", "Flatten", "Squeeze",
              "Unsqueeze", "Slice", "Concat", "Clip")


def weighted_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    inits = {t.name for t in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type in WEIGHTED_OPS and len(n.input) > 1
            and n.input[1] in inits]


def node_names(model: onnx.ModelProto) -> set[str]:
    return {n.name for n in model.graph.node}


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: n for n in model.graph.node for out in n.output}


def output_tail(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The compute nodes whose results reach a graph output through layout-only ops."""
    producers = _producers(model)
    tail: list[onnx.NodeProto] = []
    for out in model.graph.output:
        node = producers.get(out.name)
        while node is not None and node.op_type in LAYOUT_OPS and node.input:
            node = producers.get(node.input[0])
        if node is not None and node not in tail:
            tail.append(node)
    return tail


def _reaches_input_directly(
    model: onnx.ModelProto, tensor: str, producers: dict[str, onnx.NodeProto]
) -> bool:
    """True if `tensor` comes from a graph input through no weighted op (Pad, Cast, ... only)."""
    inputs = {i.name for i in model.graph.input}
    seen: set[str] = set()
    todo = [tensor]
    while todo:
        name = todo.pop()
        if name in inputs:
            return True
        node = producers.get(name)
        if node is None or name in seen or node.op_type in WEIGHTED_OPS:
            continue
        seen.add(name)
        # Follow the data input only: the others of Pad/Reshape/Slice are shape constants.
        if node.input:
            todo.append(node.input[0])
    return False


def image_path_nodes(model: onnx.ModelProto) -> list[str]:
    """Output tail plus weighted skip branches that feed it straight from the input."""
    producers = _producers(model)
    keep: list[str] = []
    for node in output_tail(model):
        if node.op_type in WEIGHTED_OPS:
            continue  # the output layer itself is most of the work in some nets; measure it instead
        keep.append(node.name)
        for tensor in node.input:
            branch = producers.get(tensor)
            if (branch is not None and branch.op_type in WEIGHTED_OPS and branch.input
                    and _reaches_input_directly(model, branch.input[0], producers)):
                keep.append(branch.name)
    return [n for n in keep if n]


# Builds the model with exactly these nodes quantized (or everything but these excluded) and
# scores it against FP32 on the held-out crops.
ScoreFn = Callable[[Sequence[str]], Accuracy]


def layer_costs(candidates: Sequence[onnx.NodeProto], score_only: ScoreFn,
                on_layer: Callable[[], None] | None = None) -> list[LayerCost]:
    """Quantize one layer at a time; most sensitive (lowest PSNR vs FP32) first."""
    costs = []
    for node in candidates:
        costs.append(LayerCost(node.name, node.op_type, score_only([node.name]).psnr_vs_fp32))
        if on_layer:
            on_layer()
    return sorted(costs, key=lambda c: c.psnr_vs_fp32)


def choose_exclusions(
    costs: Sequence[LayerCost], base: Sequence[str], score_excluding: ScoreFn, max_loss_db: float,
    first: Accuracy,
) -> tuple[list[str], Accuracy, list[dict[str, object]]]:
    """Fewest of the most sensitive layers to keep in float so the loss is within the budget.

    `first` is the score with only `base` excluded. Binary search over k (the k worst layers kept in
    float), since the loss falls as more is kept in float: ~log2(layers) quantizations, not one per
    layer. Returns (excluded nodes, their score, the steps tried); if even keeping every layer in
    float misses the budget, that is returned and the report says the target was missed.
    """
    tried: dict[int, Accuracy] = {0: first}

    def score(k: int) -> Accuracy:
        if k not in tried:
            tried[k] = score_excluding([*base, *(c.node for c in costs[:k])])
        return tried[k]

    def ok(k: int) -> bool:
        return score(k).loss_db <= max_loss_db

    if ok(0) or not costs:
        best = 0
    elif not ok(len(costs)):
        best = len(costs)
    else:
        lo, hi = 0, len(costs)  # ok(lo) is False, ok(hi) is True
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        best = hi
    steps: list[dict[str, object]] = [
        {"kept_in_float": k, "loss_db": round(a.loss_db, 4), "psnr_vs_fp32": round(a.psnr_vs_fp32, 3)}
        for k, a in sorted(tried.items())]
    return [*base, *(c.node for c in costs[:best])], score(best), steps
