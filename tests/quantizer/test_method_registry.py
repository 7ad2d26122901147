"""A method is two classes: a variant model (codequant.study.methods) and a quantizer (codequant_quantizer.methods).

This test adds a throwaway method the way a new one would be added, and checks that the study parser, the
command line, the quantizer, the footprint, the recorded library versions and the reporter all pick it up without
any other change (a method with a new library also adds that library to its distribution's extra).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import torch
import typer
from pydantic import Field
from typer.testing import CliRunner

from codequant import footprint as fp
from codequant.study import StudyError, parse_study
from codequant.study.methods import VariantModel, register_variant, unregister_variant
from codequant_quantizer import cli
from codequant_quantizer.api import footprint, quantize
from codequant_quantizer.methods import QuantizeJob, Quantizer, register_quantizer, unregister_quantizer
from codequant_quantizer.model_io import decoder_layers, load_for_quantization
from codequant_quantizer.record import save_and_record
from codequant_reporter.study_data import VariantData


# -- "file 1": the variant model, as it would live in codequant/study/methods/truncate.py ------------------------
class TruncateVariant(VariantModel):
    """Block linear weights with their float32 mantissas cut to ``mantissa_bits`` bits (stored as float32)."""

    #: The library it makes folders with, as a new method's would be (its versions are recorded with the work).
    quantize_packages: ClassVar[tuple[str, ...]] = ("safetensors",)
    serve_packages: ClassVar[tuple[str, ...]] = ("safetensors",)

    method: Literal["truncate"]
    mantissa_bits: int = Field(7, ge=1, le=23, description="mantissa bits kept")

    def bits_per_weight(self, dtype: str, footprint: dict[str, Any] | None = None) -> float | None:
        return float(1 + 8 + self.mantissa_bits)

    def precision_label(self, dtype: str, footprint: dict[str, Any] | None = None) -> str:
        return f"float32 cut to {self.mantissa_bits} mantissa bits"

    def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
        return fp.unquantized(tensors)  # the folder keeps float32 tensors


# -- "file 2": the quantizer, as it would live in codequant_quantizer/methods/truncate.py -------------------------
class TruncateQuantizer(Quantizer):
    methods = ("truncate",)

    def quantize(self, job: QuantizeJob) -> dict[str, Any]:
        started = time.monotonic()
        loaded, tokenizer, _ = load_for_quantization(job.model, "float32", job.device)
        mask = ~((1 << (23 - job.config["mantissa_bits"])) - 1)
        with torch.no_grad():
            for block in decoder_layers(loaded):
                for module in block.modules():
                    if isinstance(module, torch.nn.Linear):
                        module.weight.data.view(torch.int32).bitwise_and_(mask)
        return save_and_record(
            job.out_dir,
            loaded,
            tokenizer,
            model=job.model,
            config=job.config,
            fingerprint=job.fingerprint,
            device=job.device,
            save_dtype=torch.float32,
            started=started,
        )


@pytest.fixture
def truncate_method() -> Iterator[None]:
    register_variant(TruncateVariant)
    register_quantizer(TruncateQuantizer)
    yield
    unregister_variant(TruncateVariant)
    unregister_quantizer(TruncateQuantizer)


STUDY = """\
name: s
models:
  - name: m
    hub_id: org/model
    variants:
      - {name: base, method: baseline}
      - {name: cut, method: truncate, mantissa_bits: 3}
benchmarks: [humaneval]
"""


def test_a_study_file_takes_the_new_method_and_validates_its_fields(truncate_method: None) -> None:
    variant = parse_study(STUDY).models[0].variants[1]
    assert isinstance(variant, TruncateVariant) and variant.mantissa_bits == 3
    with pytest.raises(StudyError, match=r"variants\[1\].mantissa_bits: Input should be less than or equal to 23"):
        parse_study(STUDY.replace("mantissa_bits: 3", "mantissa_bits: 30"))


def test_the_quantizer_writes_the_folder_through_the_shared_record_step(
    truncate_method: None, small_code_model: Path, tmp_path: Path
) -> None:
    folder = quantize(str(small_code_model), {"method": "truncate", "mantissa_bits": 3}, tmp_path / "cut")
    record = json.loads((folder / "quantization.json").read_text())
    assert record["method"] == "truncate" and record["config"]["mantissa_bits"] == 3
    assert record["versions"]["safetensors"] == metadata.version("safetensors")  # the method's own library
    from safetensors.torch import load_file

    weight = load_file(folder / "model.safetensors")["model.layers.0.mlp.down_proj.weight"]
    assert (weight.view(torch.int32) & ((1 << 20) - 1)).count_nonzero() == 0  # 20 low mantissa bits are gone
    assert footprint(folder)["total_bytes"] == footprint(small_code_model)["total_bytes"]


def test_the_command_line_derives_its_options_and_predicts_its_footprint(
    truncate_method: None, small_code_model: Path
) -> None:
    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()
    assert "--mantissa-bits" in runner.invoke(app, ["quantize", "--help"], terminal_width=200).output
    config = str(small_code_model / "config.json")
    args = ["footprint", "--config", config, "--method", "truncate", "--mantissa-bits", "5", "--dtype", "fp32"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_bytes"] == footprint(small_code_model)["total_bytes"]
    wrong = runner.invoke(app, ["footprint", "--config", config, "--method", "aqlm", "--mantissa-bits", "5"])
    assert "--mantissa-bits does not apply to --method aqlm (it is for truncate)" in str(wrong.exception)


def test_the_report_asks_the_method_for_its_bits_and_label(truncate_method: None) -> None:
    spec = parse_study(STUDY).models[0].variants[1]
    shown = VariantData(key="k", model="m", spec=spec, footprint=None, status="ready", error=None, dtype="float32")
    assert (shown.bits, shown.precision) == (12.0, "float32 cut to 3 mantissa bits")


def test_a_method_that_does_not_say_its_bits_cannot_be_registered() -> None:
    class Forgetful(VariantModel):
        method: Literal["forgetful"]

        def predict_footprint(self, tensors: fp.TensorShapes) -> dict[str, Any]:
            return fp.unquantized(tensors)

    with pytest.raises(TypeError, match="does not implement bits_per_weight, precision_label"):
        register_variant(Forgetful)


def test_the_stages_record_the_libraries_the_method_declares(truncate_method: None) -> None:
    from codequant.study.methods import method_packages

    # The quantize stage, quantization.json and a self-served variant's generate stage record these versions.
    assert method_packages("quantize")[-1] == "safetensors" and method_packages("serve")[-1] == "safetensors"
    assert method_packages("quantize")[:-1] == ("aqlm", "llmcompressor", "compressed-tensors", "bitsandbytes")
