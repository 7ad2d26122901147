"""Serving throughput: `codequant serve` against transformers' own batched `generate(num_return_sequences=n)`
(and, with --naive, a loop calling `generate` once per sample). Same model, prompts, token budget and sampling
settings, same run.

    .venv/bin/python benchmarks/serving_throughput.py --model DIR [--prompts 8] [--n 20] [--max-new-tokens 128]

`codequant serve` receives one OpenAI request per prompt (n samples each, --concurrency at a time) and decodes
them with continuous batching; transformers decodes each prompt's n samples as one batch until the last one
stops. Each side runs in its own process; peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

TRANSFORMERS = r"""
import json, resource, sys, time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from codequant.benchmarks import load_benchmark
args = json.loads(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(args["model"])
model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32).eval()
problems = load_benchmark("humaneval").problems[: args["prompts"]]
pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
tokens = completions = 0
start = time.perf_counter()
for problem in problems:
    ids = tokenizer(problem.prompt, return_tensors="pt")
    batched = args["mode"] == "batched"
    for sample in range(1 if batched else args["n"]):
        torch.manual_seed(sample)
        out = model.generate(**ids, do_sample=True, temperature=args["temperature"], top_p=args["top_p"],
                             max_new_tokens=args["max_new_tokens"], stop_strings=problem.stop_tokens,
                             num_return_sequences=args["n"] if batched else 1,
                             tokenizer=tokenizer, pad_token_id=pad)
        generated = out[:, ids["input_ids"].shape[1]:]
        tokens += int((generated != pad).sum())
        completions += generated.shape[0]
print(json.dumps({"seconds": time.perf_counter() - start, "tokens": tokens, "completions": completions,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

SERVED = r"""
import json, sys, time, httpx
from concurrent.futures import ThreadPoolExecutor
from codequant.benchmarks import load_benchmark
args = json.loads(sys.argv[1])
problems = load_benchmark("humaneval").problems[: args["prompts"]]
def one(problem):
    response = httpx.post(args["url"] + "/v1/completions", timeout=3600, json={
        "model": args["model"], "prompt": problem.prompt, "n": args["n"], "max_tokens": args["max_new_tokens"],
        "temperature": args["temperature"], "top_p": args["top_p"], "stop": problem.stop_tokens, "seed": 0})
    response.raise_for_status()
    return response.json()
one(problems[0])  # warm-up, as transformers' side has loaded and run its model in-process
start = time.perf_counter()
with ThreadPoolExecutor(args["concurrency"]) as pool:
    results = list(pool.map(one, problems))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "tokens": sum(r["usage"]["completion_tokens"] for r in results),
                  "completions": sum(len(r["choices"]) for r in results)}))
"""


def run(code: str, args: dict) -> dict:
    output = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch CPU threads on every side ($OMP_NUM_THREADS)")
    parser.add_argument("--naive", action="store_true", help="also time generate() once per sample (slow)")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the server and transformers' process
    # The codequant command makes idle OpenMP threads sleep on a busy machine: give every side that policy.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = {
        "model": args.model,
        "prompts": args.prompts,
        "n": args.n,
        "max_new_tokens": args.max_new_tokens,
        "temperature": 0.2,
        "top_p": 0.95,
        "concurrency": args.concurrency,
    }
    from codequant_generator.api import running_server

    with running_server(args.model, max_batch_size=args.max_batch_size) as url:
        served = run(SERVED, {**settings, "url": url})
    rows = [("codequant serve (continuous batching)", served, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)]
    batched = run(TRANSFORMERS, {**settings, "mode": "batched"})
    rows.append(("transformers generate(num_return_sequences=n)", batched, batched["rss"]))
    if args.naive:
        naive = run(TRANSFORMERS, {**settings, "mode": "naive"})
        rows.append(("transformers generate() per sample", naive, naive["rss"]))
    threads = os.environ.get("OMP_NUM_THREADS", "torch default")
    print(f"settings: {json.dumps({**settings, 'max_batch_size': args.max_batch_size, 'threads': threads})}")
    for label, result, rss in rows:
        print(
            f"{label:<46} {result['completions']:>4} completions {result['seconds']:8.1f} s "
            f"{result['completions'] / result['seconds']:7.2f} completions/s "
            f"{result['tokens'] / result['seconds']:8.1f} tokens/s  peak RSS <= {rss / 1024:.0f} MiB"
        )
    speed = served["completions"] / served["seconds"]
    for label, result, _ in rows[1:]:
        print(f"speed-up over {label} (completions/s): {speed / (result['completions'] / result['seconds']):.2f}x")


if __name__ == "__main__":
    main()
