#!/usr/bin/env python3
"""PyTorch fp32 peer of `densecap bench llm`: prefill one prompt in a single forward pass, then
decode greedily with the KV cache, on a transformers Qwen2 checkpoint loaded as float32.

Usage: llm_torch.py MODEL_DIR [--prompt-tokens 1024] [--decode-tokens 128] [--threads N] [--repeats R]

Same work as densecap: the prompt ids are ids[i] = (i*7919 + 13) % min(V, 50000); prefill is one
forward over them that keeps the logits of the last position only (`logits_to_keep=1`) and fills the
cache; decode is a manual loop of --decode-tokens single-token forwards (`past_key_values`,
`use_cache=True`, argmax of the last logits, no stop token), starting from the prefill's argmax.
Each repeat starts from an empty cache; the best prefill and the best decode over the repeats are
reported. Prefill FLOPs use densecap's formula: 2 per block weight per token, causal attention
(QKᵀ and PV over L²/2 pairs per head) and the LM head for the last position.

Prints one JSON object on stdout with densecap's keys (prefill_s, prefill_tok_s, prefill_gflops,
decode_s, decode_tok_s, load_s, threads, blas, blas_core) plus torch details; progress on stderr.
Run it in bench/peers_venv.sh's venv.
"""
import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import time


def log(msg):
    print(f"[llm_torch {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# A tiny fp32 linear with MKL and oneDNN verbose logging on, in a child process: the first log
# lines name the instruction set each library dispatched to on this CPU (MKL may pick a narrower
# code path on non-Intel CPUs), and whether fp32 linear went to MKL or to oneDNN.
PROBE = """
import torch
torch.set_num_threads(1)
x = torch.randn(64, 256); w = torch.randn(512, 256)
torch.nn.functional.linear(x, w)
"""


def kernel_probe():
    env = dict(os.environ, MKL_VERBOSE="1", ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    try:
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                             timeout=120).stdout
    except (subprocess.SubprocessError, OSError) as e:
        return {"error": str(e)}
    lines = out.splitlines()
    # The first MKL line names the code path, e.g. "MKL_VERBOSE oneMKL 2024.0 Update 2 Product build
    # 20240605 for Intel(R) 64 architecture Intel(R) Advanced Vector Extensions 512 (Intel(R) AVX-512)
    # enabled processors, Lnx 2.90GHz lp64 gnu_thread"; on CPUs MKL does not tune for it says
    # "... architecture Intel(R) Architecture processors, ...". Call lines look like
    # "MKL_VERBOSE SGEMM(T,N,512,64,256,...) 10.5us CNR:OFF Dyn:1 ...".
    mkl = next((l for l in lines if l.startswith("MKL_VERBOSE") and " build " in l), None)
    mkl_calls = [l.split()[1] for l in lines
                 if l.startswith("MKL_VERBOSE") and " build " not in l and "(" in l.split()[1]]
    onednn_isa = next((l.split("isa:", 1)[1] for l in lines if l.startswith("onednn_verbose") and ",isa:" in l), None)
    onednn_exec = [l for l in lines if l.startswith("onednn_verbose") and ",exec," in l]
    isa = None
    if mkl:
        m = re.search(r"64 architecture (.*?),", mkl)
        isa = m.group(1) if m else mkl
    return {
        "mkl_isa": isa,
        "fp32_linear_calls": sorted({c.split("(")[0] for c in mkl_calls}) or None,
        "onednn_isa": onednn_isa,
        "onednn_used_for_fp32_linear": bool(onednn_exec),
    }


def torch_runtime(torch):
    """Which BLAS torch uses and which code path it dispatched to (blas, blas_core, cpu_capability,
    kernel_probe, torch_version), the keys densecap's benchmarks print too."""
    config = torch.__config__.show()
    mkl = re.search(r"(?:Math Kernel Library|oneMKL)[^\n]*?Version ([^\s-]+)", config)
    dnnl = re.search(r"(?:oneDNN|MKL-DNN)[^\n]*?\((v[\d.]+)", config)
    probe = kernel_probe()
    return {
        "blas": ("MKL " + mkl.group(1) if mkl else "no MKL") + (", oneDNN " + dnnl.group(1) if dnnl else ""),
        "blas_core": ("MKL " + probe["mkl_isa"]) if probe.get("mkl_isa") else "ATen " + torch.backends.cpu.get_cpu_capability(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "kernel_probe": probe,
        "torch_version": torch.__version__,
    }


def prefill_flops(cfg, prompt_tokens, vocab_rows):
    h, L = cfg.hidden_size, prompt_tokens
    head_dim = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    q = cfg.num_attention_heads * head_dim
    kv = cfg.num_key_value_heads * head_dim
    per_layer = h * q * 2 + h * kv * 2 + 3 * h * cfg.intermediate_size
    blocks = 2 * per_layer * L * cfg.num_hidden_layers
    attention = 2 * 2 * (L * L / 2) * q * cfg.num_hidden_layers
    head = 2 * h * vocab_rows
    return blocks + attention + head


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--prompt-tokens", type=int, default=1024)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="0 = one per core")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        sys.exit(f"llm_torch.py: {args.model}: no config.json (not a transformers checkpoint)")
    threads = args.threads or os.cpu_count()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    log(f"loading {args.model} as float32 (torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{threads} threads)")
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    load_s = time.perf_counter() - start
    cfg = model.config
    vocab_rows = model.get_input_embeddings().weight.shape[0]
    assert all(p.dtype == torch.float32 for p in model.parameters()), "weights are not float32"

    # transformers 4.50 renamed num_logits_to_keep to logits_to_keep.
    params = inspect.signature(model.forward).parameters
    keep = next(({k: 1} for k in ("logits_to_keep", "num_logits_to_keep") if k in params), {})
    modulus = min(vocab_rows, 50_000)
    ids = torch.tensor([[(i * 7919 + 13) % modulus for i in range(args.prompt_tokens)]], dtype=torch.long)

    best_prefill = best_decode = float("inf")
    with torch.inference_mode():
        for r in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True, **keep)
            next_id = out.logits[:, -1, :].argmax(-1, keepdim=True)
            prefill = time.perf_counter() - t0
            past = out.past_key_values
            t0 = time.perf_counter()
            for _ in range(args.decode_tokens):
                out = model(input_ids=next_id, past_key_values=past, use_cache=True)
                past = out.past_key_values
                next_id = out.logits[:, -1, :].argmax(-1, keepdim=True)
            decode = time.perf_counter() - t0
            log(f"repeat {r + 1}: prefill {prefill:.3f} s ({args.prompt_tokens / prefill:.1f} tok/s), "
                f"decode {decode:.3f} s ({args.decode_tokens / decode:.2f} tok/s)")
            best_prefill = min(best_prefill, prefill)
            best_decode = min(best_decode, decode)
            del out, past

    flops = prefill_flops(cfg, args.prompt_tokens, vocab_rows)
    result = {
        "engine": "pytorch",
        "model": args.model,
        "threads": torch.get_num_threads(),
        "prompt_tokens": args.prompt_tokens,
        "decode_tokens": args.decode_tokens,
        "repeats": max(1, args.repeats),
        "load_s": load_s,
        "prefill_s": best_prefill,
        "prefill_tok_s": args.prompt_tokens / best_prefill,
        "prefill_flops": flops,
        "prefill_gflops": flops / best_prefill / 1e9,
        "decode_s": best_decode,
        "decode_tok_s": args.decode_tokens / best_decode,
        **torch_runtime(torch),
        "transformers_version": transformers.__version__,
        "attn_implementation": getattr(cfg, "_attn_implementation", None),
        "logits_to_keep": next(iter(keep), "none (logits for all positions)"),
        "dtype": str(next(model.parameters()).dtype),
    }
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
