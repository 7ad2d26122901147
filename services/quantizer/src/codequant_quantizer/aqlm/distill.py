"""End-to-end fine-tuning after quantization: the quantized student learns the full-precision teacher's logits.

Knowledge distillation by KL divergence over the calibration set (the reference study: 5 epochs, lr 1e-5,
Adam, early stopping on held-out calibration sequences). Codes stay fixed; codebooks, scales, norms and
biases train.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def distill(
    student: nn.Module,
    teacher: nn.Module,
    input_ids: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    patience: int,
    seed: int,
    autocast: torch.dtype | None = None,
) -> dict[str, list[float]]:
    """Train ``student`` in place; returns train and held-out KL per epoch (the best epoch's weights are kept).

    Batches of ``input_ids`` (on the CPU) move to the student's device; on a GPU, ``autocast`` (float16 or
    bfloat16) runs both models' matrix products in that precision while the trained parameters stay float32."""
    precision = _precision(student, autocast)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(input_ids.shape[0], generator=generator)
    held = max(1, input_ids.shape[0] // 10)
    valid, train = input_ids[order[:held]], input_ids[order[held:]]
    params = [p for name, p in student.named_parameters() if _trainable(name, p)]
    for p in student.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    history: dict[str, list[float]] = {
        "train_kl": [],
        "valid_kl": [_kl(student, teacher, valid, batch_size, precision)],
    }
    best, best_state, bad = history["valid_kl"][0], _snapshot(params), 0
    for _ in range(epochs):
        train = train[torch.randperm(train.shape[0], generator=generator)]
        total = 0.0
        for start in range(0, train.shape[0], batch_size):
            rows = train[start : start + batch_size]
            loss = _kl_loss(student, teacher, rows, precision)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * rows.shape[0]
        history["train_kl"].append(total / max(1, train.shape[0]))
        current = _kl(student, teacher, valid, batch_size, precision)
        history["valid_kl"].append(current)
        if current < best:
            best, best_state, bad = current, _snapshot(params), 0
        else:
            bad += 1
            if bad > patience:
                break
    with torch.no_grad():
        for p, saved in zip(params, best_state, strict=True):
            p.copy_(saved)
    for p in params:
        p.requires_grad_(False)
    return history


def _trainable(name: str, p: torch.Tensor) -> bool:
    return p.dtype.is_floating_point and "embed" not in name and "lm_head" not in name


def _snapshot(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _precision(student: nn.Module, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    device = next(student.parameters()).device
    if dtype is None or device.type == "cpu":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _kl_loss(
    student: nn.Module, teacher: nn.Module, rows: torch.Tensor, precision: contextlib.AbstractContextManager
) -> torch.Tensor:
    rows = rows.to(next(student.parameters()).device)
    with torch.no_grad(), precision:
        target = F.log_softmax(teacher(input_ids=rows).logits.float(), dim=-1)
    with precision:
        logits = student(input_ids=rows).logits
    predicted = F.log_softmax(logits.float(), dim=-1)
    return F.kl_div(predicted.flatten(0, 1), target.flatten(0, 1), log_target=True, reduction="batchmean")


@torch.no_grad()
def _kl(
    student: nn.Module,
    teacher: nn.Module,
    rows: torch.Tensor,
    batch_size: int,
    precision: contextlib.AbstractContextManager,
) -> float:
    total = 0.0
    for start in range(0, rows.shape[0], batch_size):
        chunk = rows[start : start + batch_size]
        total += float(_kl_loss(student, teacher, chunk, precision)) * chunk.shape[0]
    return total / rows.shape[0]
