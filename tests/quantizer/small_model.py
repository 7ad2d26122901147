"""A small Llama trained for about a minute on Python standard-library code (not benchmark data): a model
whose held-out perplexity quantization can hurt, for the quantizer's quality tests."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

STDLIB = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
TRAIN_MODULES = sorted(p for p in STDLIB.glob("*.py") if p.stem < "m")  # a-l: training text
HELD_OUT_MODULES = sorted(p for p in STDLIB.glob("*.py") if p.stem >= "s")  # s-z: held out
VERSION = 2


def build_small_model(folder: Path, steps: int = 300, seed: int = 0) -> Path:
    marker = folder / "small_model.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") == VERSION:
        return folder
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in TRAIN_MODULES]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=1024,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = torch.tensor([t for text in texts for t in tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        starts = torch.randint(0, len(ids) - 257, (16,), generator=generator)
        batch = torch.stack([ids[s : s + 256] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    marker.write_text(json.dumps({"version": VERSION, "steps": steps, "final_loss": float(loss)}))
    return folder


@torch.no_grad()
def held_out_perplexity(model, tokenizer, windows: int = 24, length: int = 256) -> float:
    """Perplexity on fixed windows of held-out standard-library modules."""
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in HELD_OUT_MODULES[:12])
    ids = torch.tensor(tokenizer(text)["input_ids"])
    step = (len(ids) - length) // windows
    total = 0.0
    for i in range(windows):
        window = ids[i * step : i * step + length].unsqueeze(0)
        total += float(model(input_ids=window, labels=window).loss)
    return math.exp(total / windows)
