"""Activation buffers between blocks: in memory or memory-mapped on disk, float32 or 16-bit, saved and reloaded
exactly (the per-block checkpoint), read in float32 for the compute device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codequant_quantizer.aqlm.activations import Activations
from codequant_quantizer.aqlm.stream import forward_all

SHAPE = (11, 6, 4)  # 11 rows: batches and chunks of 8 do not divide it


def _values(dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("place", ["device", "cpu", "disk"])
def test_written_rows_read_back_in_float32_and_survive_a_save(tmp_path: Path, place: str, dtype) -> None:
    buffer = Activations(SHAPE, dtype, place=place, device=torch.device("cpu"), file=tmp_path / "buffer.bin")
    values = _values(dtype)
    buffer.write(0, values[:5])
    buffer.write(5, values[5:])
    rows = torch.tensor([10, 0, 3])
    assert buffer.read(rows).dtype == torch.float32 and torch.equal(buffer.read(rows), values[rows].float())
    assert torch.equal(torch.cat([rows for _, rows in buffer.batches(8)]), values.float())
    buffer.save(tmp_path / "saved.bin")
    again = Activations(SHAPE, dtype, place="device", device=torch.device("cpu"))
    again.load(tmp_path / "saved.bin")
    assert torch.equal(again.data, values)
    if place == "disk":  # the buffer is the file: mapping it again gives the values without loading
        mapped = Activations(SHAPE, dtype, place="disk", device=torch.device("cpu"), file=tmp_path / "buffer.bin")
        assert torch.equal(mapped.data, values)
        buffer.release()
        assert not (tmp_path / "buffer.bin").exists()


def test_the_mean_square_is_one_reduction_for_float32_and_exact_enough_in_chunks(tmp_path: Path) -> None:
    values = _values(torch.float32)
    whole = Activations(SHAPE, torch.float32, place="device", device=torch.device("cpu"))
    whole.write(0, values)
    assert torch.equal(whole.mean_square(), values.square().mean())  # the float32 path's arithmetic is unchanged
    half = Activations(SHAPE, torch.bfloat16, place="disk", device=torch.device("cpu"), file=tmp_path / "b.bin")
    half.write(0, values)
    torch.testing.assert_close(half.mean_square(), values.bfloat16().float().square().mean(), rtol=1e-6, atol=0)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "short.bin").write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="truncated"):
        Activations(SHAPE, torch.float32, place="cpu", device=torch.device("cpu")).load(tmp_path / "short.bin")


def test_a_block_pass_writes_its_outputs_batch_by_batch(tmp_path: Path) -> None:
    values = _values(torch.float32)
    source = Activations(SHAPE, torch.float32, place="device", device=torch.device("cpu"))
    source.write(0, values)
    dest = Activations(SHAPE, torch.bfloat16, place="disk", device=torch.device("cpu"), file=tmp_path / "out.bin")
    seen = []

    def block(hidden: torch.Tensor) -> tuple[torch.Tensor]:
        seen.append(hidden.shape[0])
        return (hidden * 2,)

    forward_all(block, source, {}, dest)
    assert seen == [8, 3] and torch.equal(dest.data, (values * 2).bfloat16())
