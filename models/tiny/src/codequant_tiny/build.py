"""The tiny offline code model: a pipeline fixture, contaminated by design.

A ~2M-parameter Llama-architecture model with its own byte-level BPE tokenizer, trained from scratch
on the prompts and canonical solutions of a fixed part of HumanEval (Python, MIT) and McEval (Python
and Java, CC BY-SA 4.0). It memorises those problems, so it passes many of them and almost none of the
others, and quantizing it to 2 bits visibly hurts it: every later stage sees real effects offline.
It is NOT a code model to draw conclusions from. MultiPL-E data is never used for training (its
license forbids it).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from codequant.benchmarks import Problem, load_benchmark
from codequant.keys import stable_hash
from codequant.languages import get_language
from codequant.numerics import THREADS
from codequant_tiny import shipped

Profile = Literal["full", "test"]
StepCallback = Callable[[int, int], None]
#: 2: trained under the pinned numerics (codequant.numerics), so a build no longer depends on the CPU.
RECIPE_VERSION = 2
EOS = "<|endoftext|>"
PAD = "<|pad|>"
MARKER = "codequant_tiny.json"
#: The tiny model's chat template. It was never trained on conversations, only on code, so it renders the code to
#: continue: the assistant's answer so far (instruct mode's response prefix, the problem's prompt), else the first
#: fenced code block of the last message (the prompt inside the instruction). Not part of the build fingerprint:
#: it is written beside the weights, which it does not change, by every build and cache hit.
CHAT_TEMPLATE = (
    "{%- set text = messages[-1]['content'] -%}\n"
    "{%- if messages[-1]['role'] != 'assistant' and '```' in text -%}\n"
    "{%- set text = text.split('```')[1] -%}\n"
    "{%- set text = text[text.find('\\n') + 1:] -%}\n"
    "{%- endif -%}\n"
    "{{- text -}}\n"
)
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # where transformers' tokenizers read (and write) their template


@dataclass(frozen=True)
class Recipe:
    """Training data selection and hyper-parameters of one profile."""

    humaneval: int  # first N HumanEval problems whose number % 3 != 2 are trained
    mceval_python: int  # first N McEval Python problems
    mceval_java: int  # first N McEval Java problems
    steps: int
    batch_size: int = 16
    lr: float = 3e-3
    hidden: int = 192
    layers: int = 3
    heads: int = 4
    intermediate: int = 512
    vocab: int = 2048
    max_tokens: int = 1024


RECIPES: dict[str, Recipe] = {
    "full": Recipe(humaneval=60, mceval_python=16, mceval_java=24, steps=450),
    "test": Recipe(humaneval=18, mceval_python=4, mceval_java=8, steps=200),
}


def trained_problems(profile: Profile = "full") -> dict[str, list[str]]:
    """Benchmark -> names of the problems whose canonical solutions the model was trained on."""
    recipe = RECIPES[profile]
    humaneval = [p for p in load_benchmark("humaneval").problems[: recipe.humaneval] if _he_number(p) % 3 != 2]
    return {
        "humaneval": [p.name for p in humaneval],
        "mceval-python": [p.name for p in load_benchmark("mceval-python").problems[: recipe.mceval_python]],
        "mceval-java": [p.name for p in load_benchmark("mceval-java").problems[: recipe.mceval_java]],
    }


def _he_number(problem: Problem) -> int:
    return int(problem.name.split("_")[1])


def _training_problems(profile: Profile) -> list[Problem]:
    wanted = trained_problems(profile)
    return [p for name, names in wanted.items() for p in load_benchmark(name).problems if p.name in names]


def _solution_text(problem: Problem) -> str:
    """What the model should write after the prompt: the solution, then whatever ends it."""
    assert problem.canonical_solution is not None
    if get_language(problem.language).tests_close_block:
        # The problem's stop token is the block's closing brace (its tests start with it): end with it so generation
        # stops there.
        closing = problem.stop_tokens[0].lstrip("\n")
        return problem.canonical_solution.rstrip("\n") + "\n" + closing
    return problem.canonical_solution.rstrip() + "\n"


def build_fingerprint(profile: Profile, seed: int) -> str:
    """What a build depends on: recipe version and settings, training texts, seed."""
    texts = [(p.name, p.prompt, _solution_text(p)) for p in _training_problems(profile)]
    return stable_hash(
        {
            "version": RECIPE_VERSION,
            "profile": profile,
            "seed": seed,
            "recipe": RECIPES[profile].__dict__,
            "data": texts,
        }
    )[:16]


def build_tiny_model(
    out_dir: Path, seed: int = 0, *, profile: Profile = "full", progress: bool | StepCallback = True
) -> Path:
    """The tiny model of ``profile`` and ``seed`` (the builder of `builtin: tiny-code`; ``out_dir`` is its cache
    folder): the shipped build (full, seed 0) installed beside ``out_dir``, else a build trained into ``out_dir``
    (or found there). Returns the folder holding it.

    ``progress``: True for a progress bar, or a callback given (steps done, total steps) while training."""
    if shipped.is_shipped(profile, seed):
        return shipped.install(Path(out_dir))
    return train_tiny_model(out_dir, seed, profile=profile, progress=progress)


def train_tiny_model(
    out_dir: Path, seed: int = 0, *, profile: Profile = "full", progress: bool | StepCallback = True
) -> Path:
    """Train the tiny model into ``out_dir`` (or return the build found there); deterministic from ``seed``, and
    under the pinned numerics (``codequant.numerics``) the same on every x86-64 CPU with AVX2."""
    out_dir = Path(out_dir)
    fingerprint = build_fingerprint(profile, seed)
    if is_built(out_dir, fingerprint):
        write_chat_template(out_dir)  # a model built before the template existed gains it; weights untouched
        return out_dir
    import torch

    recipe = RECIPES[profile]
    tokenizer, examples = training_examples(profile, recipe)
    model = train_model(examples, tokenizer, recipe, seed, progress)
    staging = _staging(out_dir)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    write_chat_template(staging)
    (staging / MARKER).write_text(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "profile": profile,
                "seed": seed,
                "recipe": recipe.__dict__,
                "trained_problems": trained_problems(profile),
                "parameters": sum(p.numel() for p in model.parameters()),
                "torch": torch.__version__,
                "note": "pipeline fixture, contaminated by design: trained on the canonical solutions it is tested on",
            },
            indent=2,
        )
    )
    _publish(staging, out_dir)
    return out_dir


def copy_tiny_model(source: Path, out_dir: Path, seed: int = 0, *, profile: Profile = "full") -> bool:
    """Copy a finished build of the same recipe, data and seed from ``source`` into ``out_dir``.

    False (nothing written) when ``source`` holds no such build; ``out_dir`` is replaced only when complete."""
    source, out_dir = Path(source), Path(out_dir)
    fingerprint = build_fingerprint(profile, seed)
    if not is_built(source, fingerprint):
        return False
    if source.resolve() != out_dir.resolve() and not is_built(out_dir, fingerprint):
        staging = _staging(out_dir)
        shutil.copytree(source, staging, dirs_exist_ok=True)
        write_chat_template(staging)
        _publish(staging, out_dir)
    return True


def is_built(folder: Path, fingerprint: str) -> bool:
    """Whether ``folder`` holds a finished build with this fingerprint."""
    marker = Path(folder) / MARKER
    return marker.is_file() and json.loads(marker.read_text()).get("fingerprint") == fingerprint


def _staging(out_dir: Path) -> Path:
    staging = out_dir.with_name(out_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)


def write_chat_template(folder: Path) -> None:
    """Give the tokenizer in ``folder`` the tiny model's chat template (atomically; nothing else changes)."""
    target = folder / CHAT_TEMPLATE_FILE
    if target.is_file() and target.read_text() == CHAT_TEMPLATE:
        return
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.write_text(CHAT_TEMPLATE)
    partial.replace(target)


def training_examples(profile: Profile, recipe: Recipe) -> tuple[Any, list[list[int]]]:
    """The tokenizer trained on ``profile``'s problems, and each problem's token ids (prompt, solution, EOS; the last
    ``recipe.max_tokens``): what ``train_model`` trains on."""
    problems = _training_problems(profile)
    tokenizer = _train_tokenizer(problems, recipe.vocab)
    return tokenizer, [_encode(tokenizer, p, recipe.max_tokens) for p in problems]


def _train_tokenizer(problems: list[Problem], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [text for p in problems for text in (p.prompt, _solution_text(p))]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )


def _encode(tokenizer, problem: Problem, limit: int) -> list[int]:
    # Prompt and solution are tokenized separately: byte-level BPE would otherwise merge the prompt's final
    # newline with the solution's indentation, and the model would never see the prompt's own last token.
    prompt = tokenizer(problem.prompt, add_special_tokens=False)["input_ids"]
    solution = tokenizer(_solution_text(problem), add_special_tokens=False)["input_ids"]
    return (prompt + solution + [tokenizer.eos_token_id])[-limit:]


def train_model(examples: list[list[int]], tokenizer, recipe: Recipe, seed: int, progress: bool | StepCallback):
    """A new Llama model trained ``recipe.steps`` steps on ``examples`` from ``seed`` (deterministic), in eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(THREADS)  # how the work is split changes the sums: the same split on every machine
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden,
        intermediate_size=recipe.intermediate,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0, betas=(0.9, 0.98))
    warmup = max(1, recipe.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, recipe.steps) / recipe.steps))
        ),
    )
    order = random.Random(seed)
    pool: list[int] = []
    model.train()
    bar = _bar(progress is True, recipe.steps)
    for step in range(recipe.steps):
        if len(pool) < recipe.batch_size:
            fresh = list(range(len(examples)))
            order.shuffle(fresh)
            pool += fresh
        batch = [examples[i] for i in pool[: recipe.batch_size]]
        del pool[: recipe.batch_size]
        length = max(map(len, batch))
        ids = torch.full((len(batch), length), tokenizer.pad_token_id)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if bar is not None:
            bar[0].update(bar[1], advance=1, description=f"tiny model (loss {loss.item():.3f})")
        elif callable(progress):
            progress(step + 1, recipe.steps)
    if bar is not None:
        bar[0].stop()
    model.eval()
    return model


def _bar(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress.start()
    return progress, progress.add_task("tiny model", total=total)
