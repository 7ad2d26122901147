"""The quantizer's keys of stored work, pinned: a quantized folder's fingerprint (a finished folder with the same
one is reused, an unfinished run resumes only its own checkpoints), the AQLM checkpoints' format version, and the
calibration cache's key. A change to a literal here must be deliberate and come with a migration note
(docs/architecture.md, "Keys")."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from codequant_quantizer.api import model_identity, quantization_fingerprint, variant_model
from codequant_quantizer.aqlm.checkpoint import VERSION as CHECKPOINT_VERSION
from codequant_quantizer.calibration import build_calibration

AQLM = variant_model({"method": "aqlm", "preset": "aqlm-2bit"}).method_config()


def test_quantization_fingerprints_are_pinned(tmp_path: Path) -> None:
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert quantization_fingerprint("org/m", AQLM, "auto") == "5cb08393bd965006a4eafa3d"
    assert quantization_fingerprint("org/m", AQLM, "auto", "bfloat16") == "4db854329dbaa023b90ebae3"
    assert quantization_fingerprint("org/m", {"method": "rtn", "bits": 4}, "float16") == "8aeb42503b5c1460273cd745"
    assert CHECKPOINT_VERSION == 2
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    (folder / "README.md").write_text("not weights")
    assert model_identity(str(folder)) == {
        "path": str(folder.resolve()),
        "config": "dcd8329594250b92ac03ef3a99bb06549a7cff4ec9bac7e90fa3ac5287dd868a",
        "files": [("model.safetensors", 100)],
    }


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    words = ["<eos>", "<unk>", "def", "f", "return", "x", "class", "A", "pass"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>")


def test_the_calibration_cache_key_is_pinned(tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEQUANT_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus"
    (corpus / "code").mkdir(parents=True)
    (corpus / "code" / "a.py").write_text("def f x return x\n")
    (corpus / "code" / "B.java").write_text("class A pass\n")
    _, manifest = build_calibration(tokenizer, "code", nsamples=2, seqlen=4, seed=0, calibration_dir=corpus)
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert manifest["fingerprint"] == "3b7ee79d7bcc8e1dcc10a178"
    assert [p.name for p in (tmp_path / "cache" / "calibration").iterdir()] == ["3b7ee79d7bcc8e1dcc10a178.pt"]
