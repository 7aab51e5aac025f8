#!/usr/bin/env python3
"""A shallow variant of the benchmark model for smoke tests (bench/engine.sh --quick): Qwen2.5-1.5B's
width, heads and vocabulary with fewer layers, written by tools/fixtures/make_bench_model.py itself.

Usage: make_quick_model.py FIXTURE_SCRIPT OUTDIR [--layers 4]

FIXTURE_SCRIPT is the path of make_bench_model.py. It has no layer-count option, so this wrapper
imports it (which moves the process into the fixture venv, as the script itself does), makes the
Qwen2Config its qwen25_15b_config() builds take num_hidden_layers=N, and runs its main() with
OUTDIR: same seed, bf16 weights, config.json keys and tokenizer as the full model.
"""
import argparse
import importlib.util
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture_script")
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()
    script = os.path.abspath(args.fixture_script)
    if not os.path.isfile(script):
        sys.exit(f"make_quick_model.py: {script}: not found")
    sys.path.insert(0, os.path.dirname(script))
    spec = importlib.util.spec_from_file_location("make_bench_model", script)
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)  # may re-exec this script inside the fixture venv first
    if not callable(getattr(fixture, "Qwen2Config", None)) or not callable(getattr(fixture, "main", None)):
        sys.exit(f"make_quick_model.py: {script} has no Qwen2Config/main() to wrap")
    full_config = fixture.Qwen2Config

    # Set the depth when the config is built, so derived fields (layer_types in newer
    # transformers) follow it.
    def shallow_config(**kwargs):
        kwargs["num_hidden_layers"] = args.layers
        kwargs["max_window_layers"] = min(kwargs.get("max_window_layers", args.layers), args.layers)
        return full_config(**kwargs)

    fixture.Qwen2Config = shallow_config
    sys.argv = [script, args.outdir]
    fixture.main()


if __name__ == "__main__":
    main()
