"""The plan: where the activations go, whether the end-to-end fine-tuning needs gradient checkpointing and its
teacher in host memory, and the peaks on the GPU, in host memory and on disk that follow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from codequant.errors import InputError
from codequant_quantizer.aqlm.planner.memory import (
    activation_buffer,
    block_finetune,
    end_to_end_finetune,
    forward_workspace,
    quantized_layer_bytes,
    worst_layer,
)
from codequant_quantizer.aqlm.planner.settings import USABLE, Settings, Throughput
from codequant_quantizer.aqlm.planner.shapes import ModelShape
from codequant_quantizer.aqlm.planner.timing import planned_seconds


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
    """A run's plan: where activations live, the fine-tuning's choices, the peak of each stage, planned time."""

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
    buffer = activation_buffer(s, shape)
    cuda = s.device == "cuda"
    host_model = shape.params * s.weight_bytes
    block = 4 * shape.block_params if cuda else 0
    resident = {"activations (2 buffers)": 2 * buffer} if place == "device" else {}
    if cuda:
        resident["current block in float32"] = block
    forward = {**resident, "forward pass of one batch": forward_workspace(s, shape)}
    device_stages = [
        Stage("block forward passes", forward),
        Stage("layer quantization", {**resident, **worst_layer(s, shape)}),
        Stage("block fine-tuning", {**resident, **block_finetune(s, shape)}),
    ]
    if s.activation_bytes == 4 and (place == "device" or not cuda):
        # The loss scale: the mean square of float32 targets where the block computes is one reduction, which
        # materialises the squares (``Activations.mean_square``, the arithmetic float32 runs always had).
        squares = {"squared targets (loss scale)": s.nsamples * s.seqlen * shape.hidden * 4}
        device_stages.append(Stage("block fine-tuning: loss scale", {**resident, **squares}))
    gradient_checkpointing = teacher_offload = False
    if s.finetune:
        distill = end_to_end_finetune(s, shape, False, False)
        if cuda and s.gpu_memory is not None and sum(distill.values()) > USABLE * s.gpu_memory:
            gradient_checkpointing = True
            distill = end_to_end_finetune(s, shape, True, False)
            if sum(distill.values()) > USABLE * s.gpu_memory:
                teacher_offload = True
                distill = end_to_end_finetune(s, shape, True, True)
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
    quantized = shape.layers * sum(quantized_layer_bytes(s, x) for x in shape.linears)
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
