#!/usr/bin/env python3
"""Run llama.cpp's convert_hf_to_gguf.py on the benchmark's random Qwen2 checkpoint.

Usage: convert_gguf.py LLAMA_CPP_DIR MODEL_DIR [converter options, e.g. --outtype f32 --outfile x.gguf]

The converter identifies a BPE pre-tokenizer by hashing how it splits a test text and refuses
hashes it does not know (NotImplementedError in get_vocab_base_pre). The benchmark's tiny test
tokenizer uses Qwen2's pre-tokenizer regex but, trained on a small corpus, gets a new hash. This
wrapper checks that tokenizer.json really carries Qwen2's split regex and then answers "qwen2" for
the unknown hash; known hashes keep the converter's own answer. The converter pads the vocabulary
to the model's 151936 rows with [PAD…] tokens by itself.

The converter is imported as a module and its main() called, rather than run with runpy: runpy
would execute the file afresh, and in single-file versions of the converter (before the
conversion/ package) the class patched here would be defined anew. Run it with
bench/peers_venv.sh's python (torch, transformers, sentencepiece); the vendored gguf-py comes first
on sys.path, as the converter arranges itself.
"""
import json
import os
import sys

# Qwen2's pre-tokenizer split regex (tokenizer.json of the Qwen2/Qwen2.5 checkpoints).
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def split_regexes(node):
    """Every Split regex inside a tokenizer.json pre_tokenizer tree."""
    if isinstance(node, dict):
        if node.get("type") == "Split" and isinstance(node.get("pattern"), dict) and "Regex" in node["pattern"]:
            yield node["pattern"]["Regex"]
        for value in node.values():
            yield from split_regexes(value)
    elif isinstance(node, list):
        for value in node:
            yield from split_regexes(value)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    llama_dir, model_dir = os.path.abspath(sys.argv[1]), sys.argv[2]
    script = os.path.join(llama_dir, "convert_hf_to_gguf.py")
    if not os.path.isfile(script):
        sys.exit(f"convert_gguf.py: {script}: not found (expected a llama.cpp source tree)")
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        is_qwen2_split = QWEN2_REGEX in split_regexes(json.load(f).get("pre_tokenizer"))

    sys.path.insert(0, llama_dir)
    sys.argv = [script, model_dir] + sys.argv[3:]
    import convert_hf_to_gguf as converter

    # Newer converters keep the model classes in the vendored conversion/ package.
    text_model = getattr(converter, "TextModel", None) or getattr(sys.modules.get("conversion"), "TextModel", None)
    if text_model is None or not hasattr(text_model, "get_vocab_base_pre"):
        sys.exit("convert_gguf.py: this convert_hf_to_gguf.py has no TextModel.get_vocab_base_pre to patch")
    original = text_model.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            if not is_qwen2_split:
                raise
            print("convert_gguf.py: unknown pre-tokenizer hash, but tokenizer.json splits with Qwen2's "
                  "regex: using 'qwen2'", file=sys.stderr, flush=True)
            return "qwen2"

    text_model.get_vocab_base_pre = get_vocab_base_pre
    converter.main()


if __name__ == "__main__":
    main()
