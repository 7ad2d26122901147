"""Planned time of an AQLM run: a roofline estimate (floating-point work at an assumed sustained rate, memory traffic
at an assumed bandwidth, a cost per kernel launch), labelled as planned."""

from __future__ import annotations

import math

from codequant_quantizer.aqlm.block import BLOCK_FINETUNE_EPOCHS
from codequant_quantizer.aqlm.kmeans import PLUS_PLUS_MAX, nearest_chunk
from codequant_quantizer.aqlm.planner.settings import (
    ADAM_STEPS,
    EPOCHS_PER_LAYER,
    KMEANS_ITERATIONS,
    Settings,
    Throughput,
)
from codequant_quantizer.aqlm.planner.shapes import Linear, ModelShape
from codequant_quantizer.aqlm.search import output_groups_per_pass


def _roofline(flops: float, traffic: float, launches: float, t: Throughput, fp32: bool = True) -> float:
    return flops / (t.fp32_flops if fp32 else t.bf16_flops) + traffic / t.bandwidth + launches * t.launch_seconds


def layer_seconds(s: Settings, x: Linear, t: Throughput, epochs: float = EPOCHS_PER_LAYER) -> float:
    """Planned seconds to quantize one layer: k-means, then ``epochs`` alternations of Adam and beam search."""
    out, inp = x.out_features, x.in_features
    k, m, beams = s.codebook_size, s.num_codebooks, s.beam_size
    dim = s.out_group_size * s.in_group_size
    num_out, num_in = out // s.out_group_size, inp // s.in_group_size
    points = num_out * num_in
    w = out * inp * 4
    kmeans = m * _roofline(
        KMEANS_ITERATIONS * 2 * points * k * dim,
        KMEANS_ITERATIONS * 4 * points * dim * 4,
        KMEANS_ITERATIONS * 8 * math.ceil(points / nearest_chunk(k)) + (8 * k if k <= PLUS_PLUS_MAX else 0),
        t,
    )
    # Adam: per step the output error (W - Ŵ)XᵀX forward and backward and the normaliser WXᵀXWᵀ: 4 products.
    adam = ADAM_STEPS * _roofline(4 * 2 * out * inp * inp, (m + 10) * w, 40, t)
    passes = math.ceil(num_out / output_groups_per_pass(num_out, beams, k, s.workspace_bytes))
    steps = num_in * m
    beam = _roofline(
        steps * (2 * beams * out * inp * s.in_group_size + 4 * beams * k * num_out * dim),
        steps * (10 * beams * k * num_out * 4 + 3 * beams * w),
        steps * passes * 40,
        t,
    )
    return kmeans + epochs * (adam + beam)


def planned_seconds(
    shape: ModelShape,
    s: Settings,
    t: Throughput,
    gradient_checkpointing: bool = False,
    activations: str = "device",
    teacher_offload: bool = False,
) -> dict[str, float]:
    """Planned seconds per block (quantization of its layers, and its forward and fine-tuning passes: float32 on
    the device, activations read over the host link or from disk when offloaded), for all blocks, and for the
    end-to-end fine-tuning (16-bit products on a GPU; an offloaded teacher crosses the host link every step)."""
    tokens = s.nsamples * s.seqlen
    flops_per_token = 2 * shape.block_params + 4 * s.seqlen * shape.hidden
    block_passes = 2 + len(shape.groups) + 3 * BLOCK_FINETUNE_EPOCHS
    buffer = tokens * shape.hidden * s.activation_bytes
    forward = _roofline(block_passes * tokens * flops_per_token, block_passes * 3 * buffer, 0, t)
    moved = (2 + len(shape.groups) + 2 * BLOCK_FINETUNE_EPOCHS + 2) * buffer  # reads and writes of the buffers
    if activations == "cpu" and s.device == "cuda":
        forward += moved / t.host_link
    elif activations == "disk":
        forward += moved / t.disk
    layers = sum(layer_seconds(s, x, t) for x in shape.linears)
    per_block = layers + forward
    result = {"per_block": per_block, "per_block_layers": layers, "per_block_passes": forward}
    result["quantization"] = shape.layers * per_block
    if s.finetune:
        model_flops = 2 * shape.params
        passes = 1 + 3 + (1 if gradient_checkpointing else 0)  # teacher, student forward + backward, recompute
        epoch = _roofline(tokens * passes * model_flops, 0, 0, t, fp32=s.device == "cpu")
        if teacher_offload:
            epoch += (s.nsamples / s.finetune_batch) * shape.params * s.teacher_bytes / t.host_link
        result["end_to_end_finetune"] = s.finetune_epochs * epoch * 1.1  # + held-out evaluation (a tenth)
    result["total"] = result["quantization"] + result.get("end_to_end_finetune", 0.0)
    return result
