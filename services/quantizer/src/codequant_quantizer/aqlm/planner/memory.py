"""Peak bytes of each piece of an AQLM run (``aqlm/pipeline.py``): the activation buffers, a block's forward pass,
a layer's quantization (XᵀX, k-means, Adam, beam search), the block fine-tuning and the end-to-end fine-tuning."""

from __future__ import annotations

from codequant_quantizer.aqlm.kmeans import nearest_chunk
from codequant_quantizer.aqlm.planner.settings import SEED_SAMPLE, Settings
from codequant_quantizer.aqlm.planner.shapes import Linear, ModelShape
from codequant_quantizer.aqlm.search import SCORE_TEMPORARIES, output_groups_per_pass
from codequant_quantizer.aqlm.stream import BLOCK_BATCH


def activation_buffer(s: Settings, shape: ModelShape) -> int:
    return s.nsamples * s.seqlen * shape.hidden * s.activation_bytes


def _batch_tokens(s: Settings) -> int:
    return min(BLOCK_BATCH, s.nsamples) * s.seqlen


def forward_workspace(s: Settings, shape: ModelShape) -> int:
    """A block's forward pass on one batch without autograd: the batch in float32 (a copy unless the buffer already
    is float32 on the compute device) and the MLP's three [tokens, intermediate] temporaries beside two
    [tokens, hidden] ones (the attention's are smaller with fused attention)."""
    t = _batch_tokens(s)
    converted = t * shape.hidden * 4 if (s.activation_bytes != 4 or s.device == "cuda") else 0
    return converted + 4 * t * (3 * shape.intermediate + 3 * shape.hidden)


def _saved_per_token(shape: ModelShape) -> int:
    """Float32 values a Llama-style block keeps per token for its backward pass (fused attention): both norms'
    outputs, the queries, keys, values, attention output and its reshaped copy, the residual, the MLP's gate,
    activation, up projection and product, the loss's difference, and the batch's inputs and targets."""
    return 4 * (9 * shape.hidden + 2 * shape.kv_width + 4 * shape.intermediate)


def quantized_layer_bytes(s: Settings, x: Linear, code_bytes: int = 4) -> int:
    """An AqLinear: int32 codes, float32 codebooks and scales."""
    groups_out, groups_in = x.out_features // s.out_group_size, x.in_features // s.in_group_size
    return (
        groups_out * groups_in * s.num_codebooks * code_bytes
        + s.num_codebooks * s.codebook_size * s.out_group_size * s.in_group_size * 4
        + groups_out * 4
    )


def block_finetune(s: Settings, shape: ModelShape) -> dict[str, int]:
    """Block fine-tuning: autograd tensors of one batch; per quantized layer the de-quantized weight and its groups
    (saved for backward), the gather index (int64); and Adam's state for the trainable parameters."""
    t = _batch_tokens(s)
    per_layer = sum(
        8 * x.out_features * x.in_features
        + 8 * (x.out_features // s.out_group_size) * _in_groups(s, x) * s.num_codebooks
        for x in shape.linears
    )
    trainable = (
        sum(quantized_layer_bytes(s, x) - _codes(s, x) * 4 for x in shape.linears) + 4 * shape.block_other_params
    )
    return {
        "saved activations (one batch)": t * _saved_per_token(shape),
        "backward temporaries": 4 * t * 2 * shape.intermediate,
        "de-quantized weights for backward": per_layer,
        "Adam state and gradients": 4 * trainable,
    }


def _in_groups(s: Settings, x: Linear) -> int:
    return x.in_features // s.in_group_size


def _codes(s: Settings, x: Linear) -> int:
    return (x.out_features // s.out_group_size) * _in_groups(s, x) * s.num_codebooks


def _layer_workspace(s: Settings, x: Linear) -> int:
    """Peak temporaries while one layer is quantized: the largest of k-means, Adam and beam search."""
    w = x.out_features * x.in_features * 4
    k, m = s.codebook_size, s.num_codebooks
    dim = s.out_group_size * s.in_group_size
    points = _codes(s, x) // m
    sample = min(points, SEED_SAMPLE) * dim * 4 if points > SEED_SAMPLE else 0
    kmeans = w + sample + 2 * 4 * min(nearest_chunk(k), points) * k + 3 * k * dim * 4 + points * 8
    index = _codes(s, x) * 8
    adam = (m + 7) * w + 2 * index
    beams = s.beam_size
    num_out = x.out_features // s.out_group_size
    step = output_groups_per_pass(num_out, beams, k, s.workspace_bytes)
    chunk_w = step * s.out_group_size * x.in_features * 4
    beam = (
        2 * w  # reconstruction and error before the search
        + 2 * beams * chunk_w  # error per beam, old and new
        + 2 * beams * step * _in_groups(s, x) * m * 8  # codes per beam, old and new
        + SCORE_TEMPORARIES * beams * k * step * 4
    )
    return max(kmeans, adam, beam)


def _xtx(s: Settings, group: tuple[Linear, ...]) -> int:
    return sum(4 * x.in_features**2 for x in group) + 4 * group[0].in_features ** 2


def worst_layer(s: Settings, shape: ModelShape) -> dict[str, int]:
    return max(
        (
            {"XᵀX of the group": _xtx(s, group), f"quantizing {x.name}": _layer_workspace(s, x)}
            for group in shape.groups
            for x in group
        ),
        key=lambda parts: sum(parts.values()),
    )


def end_to_end_finetune(s: Settings, shape: ModelShape, checkpointing: bool, teacher_offload: bool) -> dict[str, int]:
    """End-to-end fine-tuning: teacher, student (codes packed as aqlm stores them on a GPU, int32 on the CPU),
    Adam's two moments, gradients and the best epoch's copy for the trainable parameters, logits and one batch's
    autograd tensors."""
    code_bytes = (1 if s.nbits_per_codebook <= 8 else 2) if s.device == "cuda" else 4
    quantized = shape.layers * sum(quantized_layer_bytes(s, x, code_bytes) for x in shape.linears)
    trainable = shape.layers * (
        sum(quantized_layer_bytes(s, x, 0) for x in shape.linears) + 4 * shape.block_other_params
    )
    t = s.finetune_batch * s.seqlen
    act = 2 if s.device == "cuda" else 4
    if checkpointing:
        saved = shape.layers * t * shape.hidden * 4 + t * _saved_per_token(shape) * act // 4
    else:
        saved = shape.layers * t * (_saved_per_token(shape) * act // 4)
    dequantized = (
        0
        if s.device == "cuda"
        else shape.layers * sum(8 * x.out_features * x.in_features + 8 * _codes(s, x) for x in shape.linears)
    )
    return {
        "teacher": 0 if teacher_offload else shape.params * s.teacher_bytes,
        "student (quantized blocks)": quantized,
        "student (embeddings, norms, lm_head)": 4 * shape.outside_params,
        "Adam state, gradients, best copy": 4 * trainable,
        "logits (student, teacher, their log-softmax, loss)": 6 * t * shape.vocab * 4,
        "autograd tensors of one batch": saved + dequantized,
    }
