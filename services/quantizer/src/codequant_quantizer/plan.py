"""Memory and time plan of an AQLM run, from the model's config alone (no weights, no GPU).

Every figure follows from what the pipeline allocates (``aqlm/pipeline.py``): the model's host copy; two
activation buffers of nsamples x seqlen x hidden values (the current block's inputs, and its full-precision
outputs, overwritten by the quantized block's outputs); the current block in float32 on the compute device;
while a layer is quantized, its XᵀX, k-means, Adam and beam-search temporaries (bounded by the workspace the
search is given); the block fine-tuning's autograd tensors for one batch; and the end-to-end fine-tuning's teacher,
student, optimizer and one batch. Activations live on the compute device, in host memory or in a file: ``auto``
picks the first that fits. Times are a roofline estimate — floating-point work at an assumed sustained rate plus
memory traffic at an assumed bandwidth plus a cost per kernel launch — and are labelled as planned.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codequant.errors import InputError
from codequant_quantizer.aqlm.block import BLOCK_FINETUNE_EPOCHS
from codequant_quantizer.aqlm.kmeans import PLUS_PLUS_MAX, nearest_chunk
from codequant_quantizer.aqlm.search import SCORE_TEMPORARIES, output_groups_per_pass
from codequant_quantizer.aqlm.stream import BLOCK_BATCH

GB = 10**9
GIB = 2**30
#: Share of a device's (or host's) memory a plan may fill; the rest is left to the CUDA context, allocator
#: fragmentation and other processes.
USABLE = 0.9
#: Adam steps per code/codebook alternation (``LayerSettings.adam_steps``) and k-means iterations.
ADAM_STEPS = 100
KMEANS_ITERATIONS = 50
#: k-means++ seeding looks at most this many points (``kmeans._plus_plus``).
SEED_SAMPLE = 65536
#: Code/codebook alternations a layer takes before its improvement falls under the 1 % tolerance: measured on
#: the first block of this project's small code model, 5.3 (1x8) and 4.6 (2x8) on average (benchmarks/aqlm_plan.py,
#: docs/performance.md). An assumption at 7B-34B scale; the time plan scales with it.
EPOCHS_PER_LAYER = 5.0


@dataclass(frozen=True)
class Throughput:
    """What the time plan assumes of a device: sustained float32 and 16-bit matrix rates, memory bandwidth and
    the cost of one kernel launch (published peak figures times an assumed efficiency)."""

    name: str
    fp32_flops: float
    bf16_flops: float
    bandwidth: float
    launch_seconds: float
    host_link: float = 25e9  # bytes/s between host memory and the GPU (PCIe, pageable memory)
    disk: float = 2e9  # bytes/s from an NVMe disk


#: Peak figures from NVIDIA's data sheets (FP32 without tensor cores: TF32 is off for determinism; dense BF16),
#: times 0.6 for matrix work and 0.7 for memory traffic; 25 GB/s to and from host memory, 2 GB/s from disk.
DEVICES = {
    "h100": Throughput("H100 SXM 80GB", 0.6 * 67e12, 0.6 * 989e12, 0.7 * 3.35e12, 10e-6),
    "h200": Throughput("H200 141GB", 0.6 * 67e12, 0.6 * 989e12, 0.7 * 4.8e12, 10e-6),
    "a100": Throughput("A100 SXM 80GB", 0.6 * 19.5e12, 0.6 * 312e12, 0.7 * 2.04e12, 10e-6),
}


@dataclass(frozen=True)
class Linear:
    name: str
    out_features: int
    in_features: int


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs of a model: its block's linear layers in quantization order (groups that share an
    input together), sizes of the rest."""

    hidden: int
    layers: int
    vocab: int
    groups: tuple[tuple[Linear, ...], ...]
    block_other_params: int  # norms and biases of one block
    outside_params: int  # embeddings, final norm, lm_head (once if tied)
    intermediate: int
    kv_width: int  # key/value projection width (grouped-query attention)

    @property
    def linears(self) -> list[Linear]:
        return [linear for group in self.groups for linear in group]

    @property
    def block_linear_params(self) -> int:
        return sum(x.out_features * x.in_features for x in self.linears)

    @property
    def block_params(self) -> int:
        return self.block_linear_params + self.block_other_params

    @property
    def params(self) -> int:
        return self.layers * self.block_params + self.outside_params


def load_model_config(model: str) -> dict[str, Any]:
    """A model's config.json as a dict: a file, a folder holding one, or a hub id (cache or hub)."""
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path}: not a JSON model config ({exc})") from None
    if path.suffix == ".json" or path.parent != Path("."):
        raise InputError(f"{model}: no config.json there")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model).to_dict()
    except OSError as exc:
        raise InputError(f"cannot load the config of {model!r}: {str(exc).splitlines()[0]}") from None


def model_shape(config: dict[str, Any]) -> ModelShape:
    """Shapes of a causal LM built from ``config`` on the meta device (no weights are allocated)."""
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModelForCausalLM

    from codequant_quantizer.model_io import decoder_layers, linear_groups

    data = {k: v for k, v in config.items() if k != "quantization_config"}
    if not data.get("model_type"):
        raise InputError("model config: field 'model_type' is missing")
    try:
        hf_config = AutoConfig.for_model(**data)
    except (KeyError, ValueError) as exc:
        raise InputError(f"model config: {exc}") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    blocks = decoder_layers(model)
    block = blocks[0]
    groups = tuple(
        tuple(Linear(name, module.out_features, module.in_features) for name, module in group)
        for group in linear_groups(block)
    )
    linear_params = {id(p) for m in block.modules() if isinstance(m, nn.Linear) for p in [m.weight]}
    other = sum(p.numel() for p in block.parameters() if id(p) not in linear_params)
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    outside = sum(p.numel() for p in model.parameters() if id(p) not in in_blocks)
    names = {x.name: x for group in groups for x in group}
    kv = names.get("self_attn.k_proj")
    mlp = names.get("mlp.gate_proj") or names.get("mlp.up_proj")
    hidden = hf_config.hidden_size
    return ModelShape(
        hidden=hidden,
        layers=len(blocks),
        vocab=hf_config.vocab_size,
        groups=groups,
        block_other_params=other,
        outside_params=outside,
        intermediate=mlp.out_features if mlp else 4 * hidden,
        kv_width=kv.out_features if kv else hidden,
    )


@dataclass(frozen=True)
class Settings:
    """The run's settings that memory and time depend on."""

    nsamples: int
    seqlen: int
    num_codebooks: int
    nbits_per_codebook: int
    in_group_size: int
    out_group_size: int = 1
    beam_size: int = 8
    device: str = "cpu"  # cpu | cuda
    activation_bytes: int = 4  # float32 4, float16/bfloat16 2
    weight_bytes: int = 4  # the host copy of the full-precision model (float32 on CPU runs)
    teacher_bytes: int = 4  # the end-to-end fine-tuning's teacher
    finetune: bool = False
    finetune_batch: int = 1
    finetune_epochs: int = 5
    workspace_bytes: int = GIB
    offload: str = "auto"  # auto | none | cpu | disk
    gpu_memory: int | None = None  # bytes; None: unknown (cuda) or not used (cpu)
    host_memory: int | None = None

    @property
    def codebook_size(self) -> int:
        return 2**self.nbits_per_codebook


@dataclass
class Stage:
    """Peak bytes of one stage of the run on one memory, with what they are made of."""

    name: str
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())


@dataclass
class Plan:
    settings: Settings
    shape: ModelShape
    activations: str  # device | cpu | disk
    teacher_offload: bool
    gradient_checkpointing: bool
    device_stages: list[Stage]
    host_stages: list[Stage]
    disk: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    throughput: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def device_peak(self) -> Stage:
        return max(self.device_stages, key=lambda s: s.total)

    @property
    def host_peak(self) -> Stage:
        return max(self.host_stages, key=lambda s: s.total)

    @property
    def disk_peak(self) -> int:
        return sum(self.disk.values())

    def to_dict(self) -> dict[str, Any]:
        device, host = self.device_peak, self.host_peak
        return {
            "settings": asdict(self.settings),
            "model": {"params": self.shape.params, "layers": self.shape.layers, "hidden": self.shape.hidden},
            "activations": self.activations,
            "teacher_offload": self.teacher_offload,
            "gradient_checkpointing": self.gradient_checkpointing,
            "device_peak_bytes": device.total if self.settings.device == "cuda" else None,
            "device_peak_stage": device.name if self.settings.device == "cuda" else None,
            "device_peak_parts": device.parts if self.settings.device == "cuda" else None,
            "host_peak_bytes": host.total,
            "host_peak_stage": host.name,
            "host_peak_parts": host.parts,
            "disk_peak_bytes": self.disk_peak,
            "disk_parts": self.disk,
            "planned_seconds": self.seconds,
            "throughput_assumed": self.throughput,
            "notes": self.notes,
        }


# -- memory of the pieces --------------------------------------------------------------------------------------
def _activation_buffer(s: Settings, shape: ModelShape) -> int:
    return s.nsamples * s.seqlen * shape.hidden * s.activation_bytes


def _batch_tokens(s: Settings) -> int:
    return min(BLOCK_BATCH, s.nsamples) * s.seqlen


def _forward_workspace(s: Settings, shape: ModelShape) -> int:
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


def _quantized_layer_bytes(s: Settings, x: Linear, code_bytes: int = 4) -> int:
    """An AqLinear: int32 codes, float32 codebooks and scales."""
    groups_out, groups_in = x.out_features // s.out_group_size, x.in_features // s.in_group_size
    return (
        groups_out * groups_in * s.num_codebooks * code_bytes
        + s.num_codebooks * s.codebook_size * s.out_group_size * s.in_group_size * 4
        + groups_out * 4
    )


def _finetune_block(s: Settings, shape: ModelShape) -> dict[str, int]:
    """Block fine-tuning: autograd tensors of one batch; per quantized layer the de-quantized weight and its groups
    (saved for backward), the gather index (int64); and Adam's state for the trainable parameters."""
    t = _batch_tokens(s)
    per_layer = sum(
        8 * x.out_features * x.in_features
        + 8 * (x.out_features // s.out_group_size) * _in_groups(s, x) * s.num_codebooks
        for x in shape.linears
    )
    trainable = (
        sum(_quantized_layer_bytes(s, x) - _codes(s, x) * 4 for x in shape.linears) + 4 * shape.block_other_params
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


def _worst_layer(s: Settings, shape: ModelShape) -> dict[str, int]:
    return max(
        (
            {"XᵀX of the group": _xtx(s, group), f"quantizing {x.name}": _layer_workspace(s, x)}
            for group in shape.groups
            for x in group
        ),
        key=lambda parts: sum(parts.values()),
    )


def _distill(s: Settings, shape: ModelShape, checkpointing: bool, teacher_offload: bool) -> dict[str, int]:
    """End-to-end fine-tuning: teacher, student (codes packed as aqlm stores them on a GPU, int32 on the CPU),
    Adam's two moments, gradients and the best epoch's copy for the trainable parameters, logits and one batch's
    autograd tensors."""
    code_bytes = (1 if s.nbits_per_codebook <= 8 else 2) if s.device == "cuda" else 4
    quantized = shape.layers * sum(_quantized_layer_bytes(s, x, code_bytes) for x in shape.linears)
    trainable = shape.layers * (
        sum(_quantized_layer_bytes(s, x, 0) for x in shape.linears) + 4 * shape.block_other_params
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


# -- the plan ---------------------------------------------------------------------------------------------------
def plan(shape: ModelShape, s: Settings, throughput: Throughput | None = None) -> Plan:
    """Where activations go (``s.offload``, or the first place that fits for ``auto``), whether the fine-tuning's
    teacher must stay in host memory and needs gradient checkpointing, and the peaks that follow."""
    places = {"none": "device", "cpu": "cpu", "disk": "disk"}
    if s.offload not in (*places, "auto"):
        raise InputError(f"offload: must be auto, none, cpu or disk, got {s.offload!r}")
    candidates = [places[s.offload]] if s.offload != "auto" else ["device", "cpu", "disk"]
    if s.device == "cpu":
        candidates = [c for c in candidates if c != "cpu"] or ["device"]
    chosen = None
    for place in candidates:
        chosen = _plan(shape, s, place, throughput)
        if _fits(chosen):
            break
    assert chosen is not None
    if s.offload == "auto" and not _fits(chosen):
        chosen.notes.append("does not fit even with activations on disk: fewer or shorter calibration sequences")
    return chosen


def _fits(p: Plan) -> bool:
    s = p.settings
    device_ok = s.device != "cuda" or s.gpu_memory is None or p.device_peak.total <= USABLE * s.gpu_memory
    host_ok = s.host_memory is None or p.host_peak.total <= USABLE * s.host_memory
    return device_ok and host_ok


def _plan(shape: ModelShape, s: Settings, place: str, throughput: Throughput | None) -> Plan:
    buffer = _activation_buffer(s, shape)
    cuda = s.device == "cuda"
    host_model = shape.params * s.weight_bytes
    block = 4 * shape.block_params if cuda else 0
    resident = {"activations (2 buffers)": 2 * buffer} if place == "device" else {}
    if cuda:
        resident["current block in float32"] = block
    forward = {**resident, "forward pass of one batch": _forward_workspace(s, shape)}
    device_stages = [
        Stage("block forward passes", forward),
        Stage("layer quantization", {**resident, **_worst_layer(s, shape)}),
        Stage("block fine-tuning", {**resident, **_finetune_block(s, shape)}),
    ]
    if s.activation_bytes == 4 and (place == "device" or not cuda):
        # The loss scale: the mean square of float32 targets where the block computes is one reduction, which
        # materialises the squares (``Activations.mean_square``, the arithmetic float32 runs always had).
        squares = {"squared targets (loss scale)": s.nsamples * s.seqlen * shape.hidden * 4}
        device_stages.append(Stage("block fine-tuning: loss scale", {**resident, **squares}))
    gradient_checkpointing = teacher_offload = False
    if s.finetune:
        distill = _distill(s, shape, False, False)
        if cuda and s.gpu_memory is not None and sum(distill.values()) > USABLE * s.gpu_memory:
            gradient_checkpointing = True
            distill = _distill(s, shape, True, False)
            if sum(distill.values()) > USABLE * s.gpu_memory:
                teacher_offload = True
                distill = _distill(s, shape, True, True)
        device_stages.append(Stage("end-to-end fine-tuning", distill))
    calibration = s.nsamples * s.seqlen * 8
    host_resident = {"full-precision model": host_model, "calibration token ids": calibration}
    if place == "cpu":
        host_resident["activations (2 buffers)"] = 2 * buffer
    if cuda:
        host_stages = [Stage("quantization", host_resident)]
        if s.finetune and teacher_offload:
            host_stages.append(
                Stage("end-to-end fine-tuning", {**host_resident, "teacher": shape.params * s.teacher_bytes})
            )
    else:  # one memory: the device stages happen in host memory beside the model
        host_stages = [Stage(d.name, {**host_resident, **d.parts}) for d in device_stages]
    quantized = shape.layers * sum(_quantized_layer_bytes(s, x) for x in shape.linears)
    disk = {
        "block inputs checkpoint (2 while switching)": 2 * buffer,
        "quantized blocks checkpoint": quantized,
    }
    if place == "disk":
        disk["block inputs checkpoint (2 while switching)"] = buffer
        disk["activation buffer"] = buffer
    result = Plan(s, shape, place, teacher_offload, gradient_checkpointing, device_stages, host_stages, disk)
    if throughput is not None:
        result.seconds = planned_seconds(shape, s, throughput, gradient_checkpointing, place, teacher_offload)
        result.throughput = throughput.name
    return result


# -- time -----------------------------------------------------------------------------------------------------
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


# -- from a run's options ------------------------------------------------------------------------------------------
def settings_for(
    variant: dict[str, Any],
    *,
    device: str,
    activation_bytes: int,
    weight_bytes: int,
    offload: str = "auto",
    gpu_memory: int | None = None,
    host_memory: int | None = None,
) -> Settings:
    """Settings of an AQLM variant's method config (presets expanded, defaults filled) run on ``device``.
    ``weight_bytes`` is the checkpoint's bytes per value: GPU runs keep a 16-bit model 16-bit in host memory, CPU
    runs make it float32."""
    cal = variant["calibration"]
    finetune = variant.get("finetune") or {}
    cuda = device == "cuda"
    return Settings(
        nsamples=cal["nsamples"],
        seqlen=cal["seqlen"],
        num_codebooks=variant["num_codebooks"],
        nbits_per_codebook=variant["nbits_per_codebook"],
        in_group_size=variant["in_group_size"],
        out_group_size=variant.get("out_group_size") or 1,
        beam_size=variant["beam_size"],
        device="cuda" if cuda else "cpu",
        activation_bytes=activation_bytes,
        weight_bytes=weight_bytes if cuda else 4,
        teacher_bytes=weight_bytes if cuda else 4,
        finetune=bool(variant.get("finetune")),
        finetune_batch=finetune.get("batch_size", 1),
        finetune_epochs=finetune.get("epochs", 5),
        offload=offload,
        gpu_memory=gpu_memory if cuda else None,
        host_memory=host_memory,
    )


def detected_memory(device: str, gpu_memory_gb: float | None) -> tuple[int | None, int]:
    """(GPU memory in bytes: ``gpu_memory_gb`` if given, else the first CUDA device's when one exists; host
    memory in bytes)."""
    import psutil
    import torch

    gpu = None
    if gpu_memory_gb is not None:
        gpu = int(gpu_memory_gb * GB)
    elif device == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_properties(0).total_memory
    return gpu, psutil.virtual_memory().total


def detected_throughput(device: str) -> Throughput:
    """The time plan's device: the CUDA device's when it is one of DEVICES, else an H100 (assumed)."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).lower()
        for key, spec in DEVICES.items():
            if key in name:
                return spec
    return DEVICES["h100"]


def plan_for_run(
    config: dict[str, Any],
    variant: dict[str, Any],
    *,
    device: Any,
    activation_dtype: Any,
    weight_dtype: Any,
    offload: str = "auto",
    gpu_memory_gb: float | None = None,
) -> Plan:
    """The plan a quantization run follows (``aqlm/pipeline.py``), with the memory found on this machine."""
    import torch

    kind = torch.device(device).type
    gpu, host = detected_memory(kind, gpu_memory_gb)
    settings = settings_for(
        variant,
        device=kind,
        activation_bytes=torch.empty(0, dtype=activation_dtype).element_size(),
        weight_bytes=torch.empty(0, dtype=weight_dtype).element_size(),
        offload=offload,
        gpu_memory=gpu,
        host_memory=host,
    )
    return plan(model_shape(config), settings, detected_throughput(kind) if kind == "cuda" else None)


def plan_table(result: Plan) -> Any:
    """The plan as a rich table (``codequant quantize --plan``)."""
    from rich.table import Table

    s = result.settings
    table = Table("quantity", "planned", title="AQLM run plan (planned from the model config, not measured)")
    table.add_row("model", f"{result.shape.params / 1e9:.2f}B parameters, {result.shape.layers} blocks")
    table.add_row(
        "settings",
        f"{s.num_codebooks}x{s.nbits_per_codebook} g{s.in_group_size}, {s.nsamples} x {s.seqlen} tokens, "
        f"activations {_dtype_name(s.activation_bytes)}, beam {s.beam_size}"
        + (f", end-to-end fine-tuning batch {s.finetune_batch}" if s.finetune else ""),
    )
    memory = "" if s.gpu_memory is None else f" (GPU {s.gpu_memory / GB:.0f} GB)"
    where = {"device": "on the GPU", "cpu": "in host memory", "disk": "on disk"}[result.activations]
    if s.device == "cpu":
        where = "in memory" if result.activations == "device" else "on disk"
    table.add_row("activations", f"{where}{memory}" + (" (chosen automatically)" if s.offload == "auto" else ""))
    if s.device == "cuda":
        peak = result.device_peak
        table.add_row("GPU peak", f"{peak.total / GB:.1f} GB during {peak.name}")
        for part, size in peak.parts.items():
            table.add_row(f"  {part}", f"{size / GB:.2f} GB")
        if s.finetune:
            table.add_row(
                "fine-tuning teacher", "in host memory (streamed)" if result.teacher_offload else "on the GPU"
            )
            table.add_row("gradient checkpointing", "yes" if result.gradient_checkpointing else "no")
    host = result.host_peak
    table.add_row("host memory peak", f"{host.total / GB:.1f} GB during {host.name}")
    for part, size in host.parts.items():
        table.add_row(f"  {part}", f"{size / GB:.2f} GB")
    table.add_row("disk peak (.partial)", f"{result.disk_peak / GB:.1f} GB")
    if result.seconds:
        table.add_row("time assumed on", result.throughput or "")
        table.add_row("  per block", f"{result.seconds['per_block'] / 60:.1f} min")
        table.add_row("  quantization", f"{result.seconds['quantization'] / 3600:.1f} h")
        if "end_to_end_finetune" in result.seconds:
            table.add_row("  end-to-end fine-tuning", f"{result.seconds['end_to_end_finetune'] / 3600:.1f} h")
        table.add_row("  total", f"{result.seconds['total'] / 3600:.1f} h")
    for note in result.notes:
        table.add_row("note", note)
    return table


def _dtype_name(size: int) -> str:
    return "float32" if size == 4 else "16-bit"


def print_plan(
    model: str,
    variant: dict[str, Any],
    *,
    device: str,
    dtype: str = "auto",
    activation_dtype: str = "auto",
    offload: str = "auto",
    gpu_memory_gb: float | None = None,
) -> Plan:
    """Plan a run from the model's config (a config.json, a folder, or a hub id) and print it. Planning a GPU run
    on a machine without one assumes an 80 GB GPU unless ``gpu_memory_gb`` says otherwise, and does not limit host
    memory (it is the GPU host's, not this machine's)."""
    import torch
    from rich.console import Console

    from codequant_quantizer.api import variant_model

    config = variant_model(variant).method_config()
    if config["method"] != "aqlm":
        raise InputError("--plan plans AQLM runs (--method aqlm)")
    model_config = load_model_config(model)
    weight = _weight_bytes(model_config, dtype)
    if activation_dtype not in ("auto", "float32", "float16", "bfloat16"):
        raise InputError(f"activation dtype must be auto, float32, float16 or bfloat16, got {activation_dtype!r}")
    act = (weight if weight == 2 else 4) if activation_dtype == "auto" else (4 if activation_dtype == "float32" else 2)
    kind = torch.device(device).type
    gpu, host = detected_memory(kind, gpu_memory_gb)
    notes = []
    if kind == "cuda" and not torch.cuda.is_available():
        host = None
        if gpu is None:
            gpu = 80 * GB
            notes.append("no GPU here: planned for an 80 GB GPU (--gpu-memory-gb to change)")
        notes.append("host memory not checked (no GPU here: it is the GPU host's)")
    settings = settings_for(
        config, device=kind, activation_bytes=act, weight_bytes=weight, offload=offload, gpu_memory=gpu,
        host_memory=host,
    )  # fmt: skip
    result = plan(model_shape(model_config), settings, detected_throughput(kind) if kind == "cuda" else None)
    result.notes[:0] = notes
    Console(highlight=False).print(plan_table(result))
    return result


def _weight_bytes(config: dict[str, Any], dtype: str) -> int:
    name = dtype if dtype != "auto" else (config.get("dtype") or config.get("torch_dtype") or "float32")
    sizes = {"float32": 4, "float16": 2, "bfloat16": 2, "fp32": 4, "fp16": 2, "bf16": 2}
    if name not in sizes:
        raise InputError(f"dtype: must be auto, float32, float16 or bfloat16, got {name!r}")
    return sizes[name]
