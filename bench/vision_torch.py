#!/usr/bin/env python3
"""PyTorch fp32 peer of densecap's vision benchmark: one 448 x 448 tile through NVILA's SigLIP
tower as NVILA runs it, i.e. the patch embedding plus the first 26 of 27 encoder layers (the
output NVILA takes is hidden_states[-2]; the last layer and the post-LayerNorm are skipped).

Usage: vision_torch.py MODEL_DIR [--threads N] [--repeats R] [--layers 26] [--attn sdpa|eager] [--verify]

MODEL_DIR is a SiglipVisionModel folder (NVILA's vision_tower/, or the random-weight one from
tools/fixtures/make_siglip_bench_model.py), loaded as float32. The input is a fixed pseudo-random
tile in [-1, 1] (torch.manual_seed(0)). One untimed warm-up pass, then R timed passes; the best is
reported. --verify checks once that the truncated run equals the full model's hidden_states[-2].

FLOPs, for N = (448/14)^2 = 1024 tokens, width d, MLP width f, L layers run:
    2 * N * (patch-embedding weights + L * (4 d^2 + 2 d f))      (2 per weight per token)
  + L * 2 * 2 * N^2 * d                                           (Q K^T and P V, full attention)
(biases, LayerNorms, GELU and softmax are not counted). For so400m and L = 26: 0.938 TFLOP.

Prints one JSON object on stdout (seconds, tflops, flops, flops_formula, threads, blas, blas_core,
torch details); progress on stderr. Run it in bench/peers_venv.sh's venv.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llm_torch import torch_runtime  # noqa: E402

FLOPS_FORMULA = "2*N*(588*d + L*(4*d^2 + 2*d*f)) + L*4*N^2*d, N = 1024 tokens"


def log(msg):
    print(f"[vision_torch {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tile_flops(cfg, layers):
    n = (cfg.image_size // cfg.patch_size) ** 2
    d, f = cfg.hidden_size, cfg.intermediate_size
    patch = cfg.num_channels * cfg.patch_size * cfg.patch_size * d
    weights = patch + layers * (4 * d * d + 2 * d * f)
    return 2 * n * weights + layers * 2 * 2 * n * n * d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=0, help="0 = one per core")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--layers", type=int, default=0,
                    help="encoder layers to run (default: all but the last, as NVILA's select_layer -2)")
    ap.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                    help="weights, activations and arithmetic (bfloat16: how the reference runs NVILA)")
    ap.add_argument("--verify", action="store_true", help="compare once with the full model's hidden_states[-2]")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        sys.exit(f"vision_torch.py: {args.model}: no config.json (not a transformers checkpoint)")
    threads = args.threads or os.cpu_count()

    import torch
    import transformers
    from transformers import SiglipVisionModel

    torch.set_num_threads(threads)
    dtype = getattr(torch, args.dtype)
    log(f"loading {args.model} as {args.dtype} (torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{threads} threads, attention {args.attn})")
    start = time.perf_counter()
    model = SiglipVisionModel.from_pretrained(args.model, torch_dtype=dtype, attn_implementation=args.attn)
    model.eval()
    load_s = time.perf_counter() - start
    cfg = model.config
    assert all(p.dtype == dtype for p in model.parameters()), f"weights are not {args.dtype}"
    all_layers = cfg.num_hidden_layers
    layers = args.layers or all_layers - 1
    vm = model.vision_model

    torch.manual_seed(0)
    pixels = (torch.rand(1, cfg.num_channels, cfg.image_size, cfg.image_size) * 2 - 1).to(dtype)

    def forward():
        # embeddings (patch conv + position), then `layers` pre-LN encoder layers; no post-LayerNorm
        h = vm.embeddings(pixels)
        for layer in vm.encoder.layers[:layers]:
            out = layer(h, None)
            h = out[0] if isinstance(out, tuple) else out  # a tuple before transformers 4.54
        return h

    with torch.inference_mode():
        if args.verify:
            full = model(pixel_values=pixels, output_hidden_states=True).hidden_states[layers]
            diff = float((forward() - full).abs().max())
            log(f"verify: max |truncated - hidden_states[{layers}]| = {diff:.3g}")
            assert diff == 0.0
        t0 = time.perf_counter()
        out = forward()
        log(f"warm-up {time.perf_counter() - t0:.3f} s, output {list(out.shape)}")
        times = []
        for r in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            forward()
            times.append(time.perf_counter() - t0)
            log(f"repeat {r + 1}: {times[-1]:.3f} s")

    flops = tile_flops(cfg, layers)
    best = min(times)
    result = {
        "engine": "pytorch",
        "model": args.model,
        "threads": torch.get_num_threads(),
        "layers": layers,
        "tokens": (cfg.image_size // cfg.patch_size) ** 2,
        "repeats": len(times),
        "load_s": load_s,
        "seconds": best,
        "seconds_all": times,
        "flops": flops,
        "flops_formula": FLOPS_FORMULA,
        "tflops": flops / best / 1e12,
        **torch_runtime(torch),
        "transformers_version": transformers.__version__,
        "attn_implementation": args.attn,
        "dtype": str(next(model.parameters()).dtype),
    }
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
