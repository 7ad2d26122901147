"""RTN (packed), GPTQ and AWQ through llm-compressor, bitsandbytes int8/nf4: quantize the small code model,
serve it with `codequant serve`, generate, measure the folder, and check held-out perplexity ordering."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from codequant.benchmarks import load_benchmark
from codequant.launch import running_server
from codequant.study.methods import EndpointSpec
from codequant_generator.api import generate_completions
from codequant_quantizer.api import footprint, quantize
from codequant_serving.loading import load_model
from tests.quantizer.small_model import held_out_perplexity

pytestmark = pytest.mark.slow
CALIBRATION = {"set": "code", "nsamples": 16, "seqlen": 128}
VARIANTS = {
    "rtn-8": {"method": "rtn", "bits": 8, "group_size": 64, "symmetric": True, "backend": "llm-compressor"},
    "rtn-4": {"method": "rtn", "bits": 4, "group_size": 64, "symmetric": True, "backend": "llm-compressor"},
    "gptq-8": {"method": "gptq", "scheme": "W8A16", "group_size": 64, "calibration": CALIBRATION},
    "gptq-4": {"method": "gptq", "scheme": "W4A16", "group_size": 64, "calibration": CALIBRATION},
    "gptq-w8a8": {"method": "gptq", "scheme": "W8A8", "calibration": CALIBRATION},
    "awq-4": {"method": "awq", "scheme": "W4A16", "group_size": 64, "awq_grid": 4, "calibration": CALIBRATION},
    "bnb-int8": {"method": "bnb-int8"},
    "bnb-nf4": {"method": "bnb-nf4"},
}


@pytest.fixture(scope="module")
def folders(small_code_model: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("library-methods")
    return {
        name: quantize(str(small_code_model), variant, root / name, calibration_dir=corpus, progress=False)
        for name, variant in VARIANTS.items()
    }


@pytest.fixture(scope="module")
def perplexities(small_code_model: Path, folders: dict[str, Path]) -> dict[str, float]:
    scores = {}
    for name, folder in {"fp": small_code_model, **folders}.items():
        model, tokenizer = load_model(str(folder))
        scores[name] = held_out_perplexity(model, tokenizer)
    return scores


def stored_tensor_bytes(folder: Path) -> int:
    """Bytes of tensor data in a folder's safetensors files (file size minus the JSON header)."""
    total = 0
    for file in folder.glob("*.safetensors"):
        with file.open("rb") as handle:
            (header,) = struct.unpack("<Q", handle.read(8))
        total += file.stat().st_size - 8 - header
    return total


@pytest.mark.parametrize("name", VARIANTS)
def test_the_folder_records_the_run_and_its_footprint_matches_the_files(name: str, folders: dict[str, Path]) -> None:
    folder = folders[name]
    record = json.loads((folder / "quantization.json").read_text())
    assert record["method"] == VARIANTS[name]["method"] and record["quantized_parameters"] > 0
    size = footprint(folder)
    assert size["total_bytes"] == stored_tensor_bytes(folder)
    parts = size["breakdown"]
    assert parts["codes"] > 0 and parts["scales"] > 0
    bits = 8 if name.endswith(("8", "int8")) else 4
    # Integer weights of `bits` bits, plus scales (and bnb's outlier/absmax state) of a fraction of a bit more.
    assert bits <= size["stored_bits_per_param"] < bits + 1.5, size
    if "calibration" in VARIANTS[name]:
        assert record["calibration"]["nsamples"] == CALIBRATION["nsamples"]
    if VARIANTS[name]["method"] != "awq":
        errors = [layer["relative_weight_error"] for layer in record["layers"]]
        assert len(errors) == 2 * 7 and all(0 < e < (0.01 if bits == 8 else 0.2) for e in errors), errors


@pytest.mark.parametrize("name", VARIANTS)
def test_the_footprint_predicted_from_the_config_is_the_folders(
    name: str, small_code_model: Path, folders: dict[str, Path]
) -> None:
    config = json.loads((small_code_model / "config.json").read_text())
    predicted = footprint(config=config, variant=VARIANTS[name], dtype="float32")
    measured = footprint(folders[name])
    assert (predicted["total_bytes"], predicted["breakdown"]["codes"]) == (
        measured["total_bytes"],
        measured["breakdown"]["codes"],
    )


def test_quantized_folders_are_smaller_than_full_precision(small_code_model: Path, folders: dict[str, Path]) -> None:
    full = footprint(small_code_model)["total_bytes"]
    sizes = {name: footprint(folder)["total_bytes"] for name, folder in folders.items()}
    assert all(size < full for size in sizes.values()), (full, sizes)
    assert sizes["gptq-4"] < sizes["gptq-8"] and sizes["bnb-nf4"] < sizes["bnb-int8"]


def test_perplexity_grows_as_bits_shrink(perplexities: dict[str, float]) -> None:
    p = perplexities
    for eight, four in (("rtn-8", "rtn-4"), ("gptq-8", "gptq-4"), ("bnb-int8", "bnb-nf4")):
        assert p["fp"] * 0.999 <= p[eight] <= p[four], p
    assert p["fp"] * 0.999 <= p["awq-4"], p
    # Calibrated methods beat plain rounding at the same width.
    assert p["gptq-4"] < p["rtn-4"], p


@pytest.mark.parametrize("name", ["rtn-4", "gptq-4", "awq-4", "bnb-int8", "bnb-nf4"])
def test_the_server_loads_the_folder_and_generates(name: str, folders: dict[str, Path]) -> None:
    problems = load_benchmark("humaneval", limit=1).problems
    records: list[dict] = []
    with running_server(str(folders[name])) as url:
        generate_completions(
            problems,
            EndpointSpec(url=url, api="tgi"),
            n=2,
            temperature=0.8,
            top_p=0.95,
            max_new_tokens=24,
            seed=1,
            on_record=records.append,
        )
    assert sorted(r["sample"] for r in records) == [0, 1]
    assert all(
        r["completion_tokens"] > 0 and r["finish_reason"] in ("length", "stop_sequence", "eos_token") for r in records
    ), [(r["completion_tokens"], r["finish_reason"]) for r in records]
