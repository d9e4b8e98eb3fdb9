"""Loads checkpoint folders written by scripts/gpu-check/prepare.ts and compares their logits.

    python3 scripts/gpu-check/hf_load_check.py test-artifacts/gpu-check              # transformers
    python3 scripts/gpu-check/hf_load_check.py test-artifacts/gpu-check --loader barnraise

``transformers`` (the GPU machine has it; CI cannot install it) loads each folder with
``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``; ``barnraise``
loads it with the torch executor's own model, so the comparison itself runs anywhere. Logits
must match the TypeScript trainer's within 1e-4 (relative, whole tensor) for float32 folders and
2e-2 for bfloat16 ones (the weights were rounded). Prints one line per folder and exits 1 if any
folder fails.
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = {'F32': 1e-4, 'BF16': 2e-2}


def logits_transformers(folder, inputs, device):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = 'In the beginning'
    ids = tokenizer(text)['input_ids']
    # The byte tokenizer's files must load and give the text back.
    note = f'tokenizer {type(tokenizer).__name__}: {text!r} → {ids[:8]}…, decodes to {tokenizer.decode(ids)!r}'
    if tokenizer.decode(ids, skip_special_tokens=True) != text:
        raise AssertionError(f'tokenizer round trip failed: {note}')
    with torch.no_grad():
        out = model(torch.tensor(inputs, device=device)).logits
    return out.float().cpu(), f'{type(model).__name__} via from_pretrained; {note}'


def logits_barnraise(folder, inputs, device):
    sys.path.insert(0, os.path.join(HERE, '..', '..', 'torch-executor'))
    from barnraise_torch.config import parse_config
    from barnraise_torch.model import LlamaForCausalLM
    from barnraise_torch.safetensors import read_file
    with open(os.path.join(folder, 'config.json')) as f:
        config = parse_config(json.load(f))
    model = LlamaForCausalLM(config, torch.device(device))
    _, tensors = read_file(os.path.join(folder, 'model.safetensors'))
    with torch.no_grad():
        for name, p in model.ordered_parameters():
            p.copy_(torch.from_numpy(tensors[name].to_float32()))
        out = model(torch.tensor(inputs, device=device))
    return out.float().cpu(), 'barnraise_torch model'


def main(argv=None):
    """Checks every folder under the given one; exit status 1 if any fails."""
    parser = argparse.ArgumentParser(prog='hf_load_check.py')
    parser.add_argument('root', help='the folder prepare.ts wrote')
    parser.add_argument('--loader', choices=['transformers', 'barnraise'], default='transformers')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    load = logits_transformers if args.loader == 'transformers' else logits_barnraise
    folders = sorted(d for d in os.listdir(args.root) if os.path.exists(os.path.join(args.root, d, 'expected.json')))
    if not folders:
        print(f'hf-check: no folders with expected.json under {args.root}; run bin/node scripts/gpu-check/prepare.ts first')
        return 1
    failed = 0
    for name in folders:
        folder = os.path.join(args.root, name)
        with open(os.path.join(folder, 'expected.json')) as f:
            expected = json.load(f)
        try:
            got, how = load(folder, expected['inputs'], args.device)
            want = torch.tensor(expected['logits'], dtype=torch.float64).reshape(got.shape)
            err = float(torch.linalg.norm(got.double() - want) / torch.linalg.norm(want))
            ok = err <= TOLERANCE[expected['dtype']]
            print(f"hf-check: {name}: {'ok' if ok else 'FAILED'}, logits relative error {err:.2e} (limit {TOLERANCE[expected['dtype']]:g}); {how}")
        except Exception as e:  # noqa: BLE001 — report every folder, then fail
            ok = False
            print(f'hf-check: {name}: FAILED: {type(e).__name__}: {e}')
        failed += 0 if ok else 1
    print(f'hf-check: {len(folders) - failed} of {len(folders)} folders load and match ({args.loader})')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
