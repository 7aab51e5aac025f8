"""Drive a running `densecap serve` with the official `openai` Python client (from PyPI).

Checks what an OpenAI client relies on: the model list, a chat with an image as a data URL, the
same chat streamed (the deltas concatenate to the non-streamed greedy text, the usage chunk
comes when asked for), `finish_reason == "length"` at the token budget, and a typed error for an
unknown model. Exits non-zero with a one-line reason on the first failed check.

Usage: python tools/openai_check.py --base-url http://127.0.0.1:PORT/v1 --model NAME --image FILE.png
       [--api-key KEY] [--max-tokens 16]
Run by scripts/test.sh through tools/openai_check.sh (venv, server start and stop).
"""
import argparse
import base64
import mimetypes
import sys

import openai


def fail(message):
    print(f"openai_check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--api-key", default="unused")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, timeout=120, max_retries=0)

    ids = [m.id for m in client.models.list().data]
    check(args.model in ids, f"/v1/models lists {ids}, not {args.model!r}")

    mime = mimetypes.guess_type(args.image)[0] or "image/png"
    with open(args.image, "rb") as f:
        url = f"data:{mime};base64," + base64.b64encode(f.read()).decode()
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": "Describe the image."},
    ]}]
    sampling = dict(model=args.model, messages=messages, temperature=0, seed=0, max_completion_tokens=args.max_tokens)

    reply = client.chat.completions.create(**sampling)
    text = reply.choices[0].message.content
    check(isinstance(text, str) and text.strip(), f"empty answer: {reply!r}")
    check(reply.choices[0].message.role == "assistant", f"role {reply.choices[0].message.role!r}")
    check(reply.choices[0].finish_reason in ("stop", "length"), f"finish_reason {reply.choices[0].finish_reason!r}")
    check(reply.model == args.model, f"model {reply.model!r}")
    u = reply.usage
    check(u is not None and u.prompt_tokens > 0 and u.completion_tokens > 0
          and u.total_tokens == u.prompt_tokens + u.completion_tokens, f"usage {u!r}")

    pieces, finish, usage, roles = [], [], None, []
    stream = client.chat.completions.create(**sampling, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    streamed = "".join(pieces)
    check(streamed == text, f"streamed text {streamed!r} differs from the answer {text!r}")
    check(roles == ["assistant"], f"stream roles {roles}")
    check(finish == [reply.choices[0].finish_reason], f"stream finish reasons {finish}")
    check(usage is not None and usage.completion_tokens == u.completion_tokens
          and usage.prompt_tokens == u.prompt_tokens, f"stream usage {usage!r} vs {u!r}")

    short = client.chat.completions.create(**{**sampling, "max_completion_tokens": 2})
    check(short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2,
          f"max 2 tokens: finish_reason {short.choices[0].finish_reason!r}, usage {short.usage!r}")

    try:
        client.chat.completions.create(**{**sampling, "model": "no-such-model"})
        fail("an unknown model was answered")
    except openai.NotFoundError as error:
        check(error.status_code == 404, f"unknown model: status {error.status_code}")

    print(f"openai_check: ok (openai {openai.__version__}): {len(text)} characters, "
          f"{u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, streamed in {len(pieces)} pieces")


if __name__ == "__main__":
    main()
