"""Concurrent load on an OpenAI-compatible chat endpoint (the `densecap serve` benchmark).

CLIENTS tasks each send chat requests back to back for DURATION seconds (or REQUESTS each): an
image as a data URL plus a question; every fourth request streams (server-sent events, timed to
the last event). Prints one JSON object: requests, failures (any non-200, transport error,
malformed answer, or a stream without its usage chunk and `[DONE]`), empty answers (counted apart:
a random-weight checkpoint may generate only tokens that decode to nothing), latency p50/p95/max,
throughput, completion tokens per second.

Usage: python bench/serve_load.py --url http://127.0.0.1:PORT --model NAME --image FILE
       [--clients 16] [--duration 120 | --requests-per-client N] [--max-tokens 16] [--api-key KEY]
Needs httpx (bench/serve.sh runs it in a throwaway venv).
"""
import argparse
import asyncio
import base64
import json
import mimetypes
import statistics
import time

import httpx


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def one(client, url, body, stream):
    """(ok, completion_tokens, text, error) for one request."""
    if not stream:
        r = await client.post(url, json=body)
        if r.status_code != 200:
            return False, 0, "", f"HTTP {r.status_code}: {r.text[:200]}"
        data = r.json()
        text = data["choices"][0]["message"]["content"]
        tokens = data["usage"]["completion_tokens"]
        if not isinstance(text, str) or tokens < 1 or data["choices"][0]["finish_reason"] not in ("stop", "length"):
            return False, 0, "", f"malformed answer: {r.text[:200]}"
        return True, tokens, text, None
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    pieces, usage, done = [], None, False
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200:
            return False, 0, "", f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[6:]
            if payload == "[DONE]":
                done = True
                continue
            chunk = json.loads(payload)
            if "error" in chunk:
                return False, 0, "", f"stream error: {chunk['error']}"
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices", []):
                pieces.append(choice.get("delta", {}).get("content") or "")
    if not done or usage is None or usage["completion_tokens"] < 1:
        return False, 0, "", f"broken stream (done={done}, usage={usage})"
    return True, usage["completion_tokens"], "".join(pieces), None


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=120)
    p.add_argument("--requests-per-client", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--api-key", default=None)
    args = p.parse_args()

    mime = mimetypes.guess_type(args.image)[0] or "image/png"
    with open(args.image, "rb") as f:
        image = f"data:{mime};base64," + base64.b64encode(f.read()).decode()
    questions = ["Describe the image.", "What colours are there?", "What is in the middle?", "Is there any text?"]
    url = args.url.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    latencies, failures, errors, tokens, empty = [], 0, [], 0, 0
    start = time.monotonic()
    deadline = start + args.duration

    async def client_loop(index, client):
        nonlocal failures, tokens, empty
        k = 0
        while True:
            if args.requests_per_client:
                if k >= args.requests_per_client:
                    return
            elif time.monotonic() >= deadline:
                return
            body = {"model": args.model, "max_tokens": args.max_tokens, "temperature": 0,
                    "messages": [{"role": "user", "content": [
                        {"type": "image_url", "image_url": {"url": image}},
                        {"type": "text", "text": questions[(index + k) % len(questions)]}]}]}
            t0 = time.monotonic()
            try:
                ok, n, text, error = await one(client, url, body, stream=(index + k) % 4 == 3)
            except Exception as e:  # transport errors count as failures
                ok, n, text, error = False, 0, "", f"{type(e).__name__}: {e}"
            latencies.append(time.monotonic() - t0)
            if ok:
                tokens += n
                empty += not text.strip()
            else:
                failures += 1
                if len(errors) < 5:
                    errors.append(error)
            k += 1

    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits, headers=headers) as client:
        await asyncio.gather(*(client_loop(i, client) for i in range(args.clients)))
    elapsed = time.monotonic() - start
    print(json.dumps({
        "clients": args.clients, "seconds": round(elapsed, 1), "requests": len(latencies), "failed": failures,
        "empty_answers": empty,
        "errors": errors,
        "p50_s": round(percentile(latencies, 0.5), 4) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 4) if latencies else None,
        "max_s": round(max(latencies), 4) if latencies else None,
        "mean_s": round(statistics.fmean(latencies), 4) if latencies else None,
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "completion_tokens_per_s": round(tokens / elapsed, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
