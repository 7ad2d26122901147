"""The tiny model's shipped build: the ``full`` profile with seed 0, as `codequant tiny-model` trains it under the
pinned numerics (``codequant.numerics``), is package data (``fixture/``), so the demo trains nothing and every
machine starts from the same weights. `codequant tiny-model --verify` trains it again and compares."""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

from codequant.errors import ServiceError

PROFILE = "full"
SEED = 0
#: SHA-256 of every shipped file. Training writes the same weights and tokenizer on every x86-64 CPU with AVX2
#: under the pinned numerics; config.json and the marker name the library versions that wrote them.
SHA256 = {
    "chat_template.jinja": "48f73807766438aeb153563f51af9e4256f845fd313f39258b328091fb61c519",
    "codequant_tiny.json": "bfb3e66f8a59860ed6d7b582f7f945b4938a65286aa595ffbead720938dc7f82",
    "config.json": "aef4a2f8abab4a8ef00d7488e8bf66e5b8f2beb31a7eb25029e6ab4ac174af28",
    "generation_config.json": "8008cbdc55049c643afa700b8f483ad29a94eb8e42d6b8ff2ef8c0ab3588b287",
    "model.safetensors": "7da95fce3364ec31b4851284fb3e3609aced4a5d38b0f16016af1ea8bbe8f22f",
    "tokenizer.json": "ec83b695e150aa8ed31c6620b2d9f43db92dca2c821aac6e4f421a82c4b33a42",
    "tokenizer_config.json": "03d8c69964668b2778d29ca72a89e0b23ca384e15671a82d1cc3142c09c52a7d",
}
#: The files a fresh build must reproduce byte for byte (`codequant tiny-model --verify`).
VERIFIED = ("model.safetensors", "tokenizer.json")


def is_shipped(profile: str, seed: int) -> bool:
    return (profile, seed) == (PROFILE, SEED)


def fixture() -> Path:
    """The shipped build's folder inside the installed package (read only)."""
    return Path(str(resources.files("codequant_tiny") / "fixture"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mismatches(folder: Path, names: tuple[str, ...] | None = None) -> list[str]:
    """The files of ``names`` (default: all shipped files) whose bytes in ``folder`` differ from the pinned ones."""
    wanted = names or tuple(SHA256)
    return [name for name in wanted if not (folder / name).is_file() or sha256(folder / name) != SHA256[name]]


def install(cache: Path) -> Path:
    """A checked copy of the shipped build beside ``cache`` (the builtin model's cache folder), named by its
    weights' hash: a folder path that names the weights, so quantized folders made from other weights are never
    taken for its own. Copied once; model servers and workers on other machines read it from the shared cache."""
    target = cache.with_name(f"{cache.name}-{SHA256['model.safetensors'][:12]}")
    if target.is_dir() and not mismatches(target):
        return target
    damaged = mismatches(fixture())
    if damaged:
        raise ServiceError(f"the shipped tiny model is damaged ({', '.join(damaged)}): reinstall codequant-tiny-model")
    staging = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in SHA256:
        shutil.copyfile(fixture() / name, staging / name)
    shutil.rmtree(target, ignore_errors=True)  # a damaged copy
    try:
        staging.rename(target)
    except OSError:  # another process installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        if mismatches(target):
            raise
    return target
