"""Tiny-model training under OpenMP wait policies, side by side: time, CPU, page faults, wake-ups, weights.

    .venv/bin/python benchmarks/tiny_model_training.py [--steps 450] [--rounds 1] [--sides before,after]

Each side trains the demo's recipe (`full` profile, seed 0, the same 2 torch threads as `make demo`) for
``--steps`` steps (450: the whole build) in its own process; the sides alternate ``--rounds`` times.
before: OpenMP's default policy; after: `OMP_WAIT_POLICY=PASSIVE`, what the `codequant` command sets on a
busy machine. Reported per run: wall and CPU seconds, minor page faults, voluntary context switches, and
the sha256 of the trained weights, which must be the same on every side. The load average is printed too:
on a shared machine compare the pairs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

#: side -> the OpenMP settings its process starts with
SIDES: dict[str, dict[str, str]] = {
    "before": {},
    "after": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
}


def child(side: str, steps: int) -> dict[str, object]:
    from codequant_tiny import api

    recipe = dataclasses.replace(api.RECIPES["full"], steps=steps)
    tokenizer, examples = api.training_examples("full", recipe)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    model = api.train_model(examples, tokenizer, recipe, 0, False)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    digest = hashlib.sha256()
    for _name, tensor in sorted(model.state_dict().items()):
        digest.update(tensor.numpy().tobytes())
    return {
        "side": side,
        "steps": steps,
        "wall_s": round(wall, 1),
        "user_s": round(after.ru_utime - before.ru_utime, 1),
        "sys_s": round(after.ru_stime - before.ru_stime, 1),
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "voluntary_switches": after.ru_nvcsw - before.ru_nvcsw,  # a sleeping thread woken counts one
        "weights_sha256": digest.hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=450)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sides", default="before,after", help=f"comma-separated, of {', '.join(SIDES)}")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    sides = args.sides.split(",")
    results = []
    for round_ in range(args.rounds):
        for side in sides:
            load = os.getloadavg()[0]
            command = [sys.executable, __file__, "--child", side, "--steps", str(args.steps)]
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            done = subprocess.run(command, capture_output=True, text=True, check=True, env={**env, **SIDES[side]})
            result = {"round": round_ + 1, "load_1min": round(load, 1), **json.loads(done.stdout.splitlines()[-1])}
            results.append(result)
            print(json.dumps(result), flush=True)
    digests = {r["weights_sha256"] for r in results}
    print("weights identical on both sides" if len(digests) == 1 else f"WEIGHTS DIFFER: {sorted(digests)}")
    for side in sides:
        mine = [r for r in results if r["side"] == side]
        print(f"{side}: mean wall {sum(r['wall_s'] for r in mine) / len(mine):.1f} s", flush=True)


if __name__ == "__main__":
    main()
