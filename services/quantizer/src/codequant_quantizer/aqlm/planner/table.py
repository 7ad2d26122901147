"""The plan as the table `codequant quantize --plan` prints."""

from __future__ import annotations

from rich.table import Table

from codequant_quantizer.aqlm.planner.peaks import Plan
from codequant_quantizer.aqlm.planner.settings import GB


def plan_table(result: Plan) -> Table:
    """The plan as a rich table (``codequant quantize --plan``)."""
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
