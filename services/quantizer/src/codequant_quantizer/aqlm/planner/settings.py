"""What the plan assumes and is given: memory units and the share it may fill, the algorithm's iteration counts,
device throughputs, and a run's settings (from a variant's method config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
