"""Serving throughput: `codequant serve` (n samples of a prompt as one batch) vs a naive loop that calls
transformers' `generate` once per sample. Same model, prompts and settings, same run.

    .venv/bin/python benchmarks/serving_throughput.py --model DIR [--prompts 8] [--n 20] [--max-new-tokens 128]

Each side runs in its own process; peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

NAIVE = r"""
import json, sys, time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from codequant.benchmarks import load_benchmark
args = json.loads(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(args["model"])
model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32).eval()
problems = load_benchmark("humaneval").problems[: args["prompts"]]
tokens = completions = 0
start = time.perf_counter()
for problem in problems:
    ids = tokenizer(problem.prompt, return_tensors="pt")
    for sample in range(args["n"]):
        torch.manual_seed(sample)
        out = model.generate(**ids, do_sample=True, temperature=args["temperature"], top_p=args["top_p"],
                             max_new_tokens=args["max_new_tokens"], stop_strings=problem.stop_tokens,
                             tokenizer=tokenizer, pad_token_id=tokenizer.pad_token_id)
        tokens += out.shape[1] - ids["input_ids"].shape[1]
        completions += 1
import resource
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
    args = parser.parse_args()
    settings = {
        "model": args.model,
        "prompts": args.prompts,
        "n": args.n,
        "max_new_tokens": args.max_new_tokens,
        "temperature": 0.2,
        "top_p": 0.95,
        "concurrency": args.concurrency,
    }
    from codequant_generator.launch import running_server

    with running_server(args.model, max_batch_size=64) as url:
        served = run(SERVED, {**settings, "url": url})
    served_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    naive = run(NAIVE, settings)
    naive_rss = naive["rss"]
    print(f"settings: {json.dumps(settings)}")
    for label, result, rss in (
        ("codequant serve (batched n)", served, served_rss),
        ("naive generate() per sample", naive, naive_rss),
    ):
        print(
            f"{label:<30} {result['completions']:>4} completions {result['seconds']:8.1f} s "
            f"{result['completions'] / result['seconds']:7.2f} completions/s "
            f"{result['tokens'] / result['seconds']:8.1f} tokens/s  peak RSS <= {rss / 1024:.0f} MiB"
        )
    ratio = (served["completions"] / served["seconds"]) / (naive["completions"] / naive["seconds"])
    print(f"speed-up (completions/s): {ratio:.1f}x")


if __name__ == "__main__":
    main()
