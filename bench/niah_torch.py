#!/usr/bin/env python3
"""PyTorch fp32 peer of `densecap niah` (embedding mode, LongVA scoring): the V-NIAH protocol as
LongVA's vision_niah computes it (produce_haystack_embedding.py, produce_needle_embedding.py,
eval_vision_niah.py at f1d3a89), on an NVILA checkpoint folder (llm/, vision_tower/, mm_projector/).

  * haystack frames: decoded frame indices range(0, n, round(avg_fps)) (decord's rule; decoded here
    with the ffmpeg CLI to raw RGB), the first --max-frames of them;
  * each frame and each needle image: expand2square with the processor's mean colour, the SigLIP
    processor (bicubic 448, x/255, mean/std 0.5), the tower's hidden_states[-2], the projector
    (gen_nvila_fixtures.Projector, the VILA module) -> [121, 1536] for mlp_downsample_3x3_fix;
  * each cell (N, depth): haystack[:i] + needle + haystack[i:N], i = int(depth * N), flattened between
    the qwen2 template's preprompt and question + postprompt, the answer appended, one forward pass
    (use_cache=False), argmax, pred[:, L-1 : L+k-1] == answer ids.

Usage: niah_torch.py MODEL_DIR --haystack VIDEO --needles DATASET.json [--min-frames A --max-frames B
       --frame-interval C --depth-interval D] [--threads N]
Prints one JSON object on stdout: haystack frames and seconds, frames/s, per-cell seconds and
scores, predicted ids. Run it in bench/peers_venv.sh's venv (or the fixtures venv).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "fixtures"))
# The VILA projector module as the fixtures define it; importing it re-runs this script in the
# fixtures' venv (tools/fixtures/fixture_venv.py) when started from another Python.
import gen_nvila_fixtures as nv  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoTokenizer, Qwen2ForCausalLM, SiglipImageProcessor, SiglipVisionModel  # noqa: E402

PREPROMPT = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
POSTPROMPT = "<|im_end|>\n<|im_start|>assistant\n"


def log(msg):
    print(f"[niah_torch {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def haystack_frames(video, count):
    """decord's rule with the ffmpeg CLI: every round(avg_fps)-th decoded frame, the first `count`."""
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=avg_frame_rate,width,height",
         "-of", "json", video], capture_output=True, check=True, text=True).stdout)["streams"][0]
    num, den = map(int, probe["avg_frame_rate"].split("/"))
    step = round(num / den)
    w, h = probe["width"], probe["height"]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, h, w, 3)
    picked = frames[0:len(frames):step][:count]
    assert len(picked) == count, f"haystack has {len(picked)} frames at 1 fps, need {count}"
    return [Image.fromarray(f) for f in picked]


def expand2square(img, background):
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), background)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


class Encoder:
    def __init__(self, model_dir):
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        kind = cfg["mm_projector_cfg"]["mm_projector_type"]
        self.processor = SiglipImageProcessor.from_pretrained(os.path.join(model_dir, "vision_tower"))
        self.tower = SiglipVisionModel.from_pretrained(os.path.join(model_dir, "vision_tower"), torch_dtype=torch.float32).eval()
        self.projector = nv.Projector(kind, cfg["mm_hidden_size"], cfg["hidden_size"])
        state = load_file(os.path.join(model_dir, "mm_projector", "model.safetensors"))
        self.projector.load_state_dict({k: v.float() for k, v in state.items()})
        self.projector.eval()
        self.background = tuple(int(x * 255) for x in self.processor.image_mean)

    @torch.inference_mode()
    def __call__(self, images):
        padded = [expand2square(i.convert("RGB"), self.background) for i in images]
        pixels = self.processor(padded, return_tensors="pt")["pixel_values"]
        hidden = self.tower(pixels, output_hidden_states=True).hidden_states[-2]  # [B, 1024, C]
        return self.projector(hidden)  # [B, S, H]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--haystack", required=True)
    ap.add_argument("--needles", required=True)
    ap.add_argument("--min-frames", type=int, default=20)
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--frame-interval", type=int, default=20)
    ap.add_argument("--depth-interval", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(24242424)

    t = time.monotonic()
    encoder = Encoder(args.model)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(args.model, "llm"))
    llm = Qwen2ForCausalLM.from_pretrained(os.path.join(args.model, "llm"), torch_dtype=torch.float32).eval()
    load_seconds = time.monotonic() - t
    log(f"loaded in {load_seconds:.1f} s")

    t = time.monotonic()
    images = haystack_frames(args.haystack, args.max_frames)
    haystack = torch.cat([encoder([img]) for img in images])  # [N, S, H], one frame at a time like densecap
    haystack_seconds = time.monotonic() - t
    log(f"haystack: {len(images)} frames in {haystack_seconds:.1f} s")

    dataset = json.load(open(args.needles))
    folder = os.path.dirname(os.path.abspath(args.needles))
    embed = llm.model.embed_tokens

    def text(s):
        return embed(torch.tensor([tokenizer.encode(s)]))

    with torch.inference_mode():
        needles = [encoder([Image.open(os.path.join(folder, n["path"]))])[0] for n in dataset]
        pre, post = text(PREPROMPT), text(POSTPROMPT)
        questions = [text(n["prompt"]) for n in dataset]
        answers = [torch.tensor([tokenizer.encode(n["answer"])]) for n in dataset]
        cells = []
        for num_frames in range(args.min_frames, args.max_frames + 1, args.frame_interval):
            for depth in np.arange(0, 1 + args.depth_interval, args.depth_interval):
                t = time.monotonic()
                correct, preds = [], []
                for needle, question, answer_ids in zip(needles, questions, answers):
                    i = int(depth * num_frames)
                    frames = torch.cat([haystack[:i], needle.unsqueeze(0), haystack[i:num_frames]]).view(-1, haystack.shape[-1])
                    prompt = torch.cat([pre, frames.unsqueeze(0), question, post], dim=1)
                    L, k = prompt.shape[1], answer_ids.shape[1]
                    logits = llm(inputs_embeds=torch.cat([prompt, embed(answer_ids)], dim=1), use_cache=False).logits
                    pred = logits.argmax(dim=-1)[:, L - 1:L + k - 1]
                    correct.append(int((pred == answer_ids).all()))
                    preds.append(pred[0].tolist())
                seconds = time.monotonic() - t
                cells.append({"frames": num_frames, "depth": round(float(depth) * 100, -1), "score": sum(correct) / len(correct),
                              "seconds": seconds, "prompt_rows": L, "predicted": preds})
                log(f"cell {num_frames} frames, depth {depth:.2f}: {seconds:.1f} s")
    print(json.dumps({
        "engine": "pytorch", "torch": torch.__version__, "threads": args.threads, "load_seconds": load_seconds,
        "haystack_frames": len(images), "haystack_seconds": haystack_seconds,
        "frames_per_second": len(images) / haystack_seconds,
        "cells": cells, "seconds_per_cell": sum(c["seconds"] for c in cells) / len(cells),
    }))


if __name__ == "__main__":
    main()
