"""Loads checkpoint folders written by scripts/gpu-check/prepare.ts and compares their logits.

    python3 scripts/gpu-check/hf_load_check.py test-artifacts/gpu-check              # transformers
    python3 scripts/gpu-check/hf_load_check.py test-artifacts/gpu-check --loader barnraise

``transformers`` (the GPU machine has it; CI cannot install it) loads each folder with
``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``; ``barnraise``
loads it with the torch executor's own model, so the comparison itself runs anywhere.

Two comparisons, both in float32 (TF32 off):

- against the TypeScript trainer's logits (expected.json, computed from the unrounded float32
  weights): within 1e-4 (relative, whole tensor) for float32 folders and 2e-2 for bfloat16
  ones, whose weights were rounded to bf16 (that rounding alone moves the logits by ~3e-3);
- with ``--loader transformers``, also against barnraise_torch's model on the very same file:
  within 1e-4 for every folder. Both then compute in float32 from identical weights, so this
  separates "transformers reads the folder differently" from "the weights were rounded".

Computing in bf16 instead would move the logits by ~5e-3 to 7e-3 and still pass the 2e-2 bar,
so the loaded model's parameters must be float32 (a folder whose config says bfloat16 must not
silently load as bf16). Prints one line per folder, a count, and ``hf-check: PASS`` or
``hf-check: FAIL``; exits 1 if any folder fails.
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# The folders are local and the GPU machine has no network: a Hub call must fail at once
# instead of waiting on connection timeouts (read when transformers is imported).
os.environ.setdefault('HF_HUB_OFFLINE', '1')
TOLERANCE = {'F32': 1e-4, 'BF16': 2e-2}
# transformers against barnraise_torch, both float32 on the same weights: only summation order differs.
SAME_WEIGHTS_TOLERANCE = 1e-4


def relative_error(got, want):
    """‖got − want‖ / ‖want‖ over the whole tensor, in float64."""
    got, want = got.double(), want.double()
    return float(torch.linalg.norm(got - want) / torch.linalg.norm(want))


def logits_transformers(folder, inputs, device):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    # transformers ≥ 4.56 names the argument dtype (torch_dtype before); 5.x loads in the
    # checkpoint's dtype ("auto") when it is not given.
    loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    model, info = loaded if isinstance(loaded, tuple) else (loaded, {})
    info = info if isinstance(info, dict) else getattr(info, '__dict__', {})
    model = model.to(device).eval()
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    if dtypes != ['torch.float32']:
        raise AssertionError(f'from_pretrained(dtype=torch.float32) gave parameters in {", ".join(dtypes)}; the comparison needs float32 weights')
    notes = [f'{type(model).__name__} via from_pretrained, attention {getattr(model.config, "_attn_implementation", "?")}']
    if getattr(model.config, 'tie_word_embeddings', False):
        head, embed = model.get_output_embeddings(), model.get_input_embeddings()
        notes.append('lm_head tied to embed_tokens' if head is not None and head.weight.data_ptr() == embed.weight.data_ptr() else 'lm_head NOT tied to embed_tokens')
    for key in ('missing_keys', 'unexpected_keys', 'mismatched_keys'):
        if info.get(key):
            notes.append(f'{key} {sorted(map(str, info[key]))}')
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = 'In the beginning'
    ids = list(tokenizer(text)['input_ids'])
    # The byte tokenizer's files must load and give the text back: one id per UTF-8 byte.
    note = f'tokenizer {type(tokenizer).__name__}: {text!r} → {ids[:8]}…, decodes to {tokenizer.decode(ids)!r}'
    if tokenizer.decode(ids, skip_special_tokens=True) != text or ids != list(text.encode('utf-8')):
        raise AssertionError(f'tokenizer round trip failed: {note}')
    notes.append(note)
    with torch.no_grad():
        out = model(torch.tensor(inputs, device=device), use_cache=False).logits
    return out.float().cpu(), '; '.join(notes)


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


def _versions(loader):
    parts = [f'torch {torch.__version__}', f'CUDA {torch.version.cuda}']
    if loader == 'transformers':
        import transformers
        parts.append(f'transformers {transformers.__version__}')
        for name in ('tokenizers', 'safetensors'):
            try:
                parts.append(f'{name} {__import__(name).__version__}')
            except ImportError:
                parts.append(f'{name} missing')
    return ', '.join(parts)


def main(argv=None):
    """Checks every folder under the given one; exit status 1 if any fails."""
    parser = argparse.ArgumentParser(prog='hf_load_check.py')
    parser.add_argument('root', help='the folder prepare.ts wrote')
    parser.add_argument('--loader', choices=['transformers', 'barnraise'], default='transformers')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    load = logits_transformers if args.loader == 'transformers' else logits_barnraise
    # float32 means float32 here: TF32 matmuls would cost three digits against the 1e-4 bars.
    torch.set_float32_matmul_precision('highest')
    try:
        print(f'hf-check: {_versions(args.loader)}, device {args.device}', flush=True)
    except ImportError as err:
        print(f'hf-check: FAIL: {args.loader} is not importable ({err})', flush=True)
        return 1
    folders = sorted(d for d in os.listdir(args.root) if os.path.exists(os.path.join(args.root, d, 'expected.json'))) if os.path.isdir(args.root) else []
    if not folders:
        print(f'hf-check: no folders with expected.json under {args.root}; run bin/node scripts/gpu-check/prepare.ts first', flush=True)
        print('hf-check: FAIL', flush=True)
        return 1
    failed = 0
    for name in folders:
        folder = os.path.join(args.root, name)
        with open(os.path.join(folder, 'expected.json')) as f:
            expected = json.load(f)
        try:
            got, how = load(folder, expected['inputs'], args.device)
            want = torch.tensor(expected['logits'], dtype=torch.float64).reshape(got.shape)
            err = relative_error(got, want)
            limit = TOLERANCE[expected['dtype']]
            ok = err <= limit
            rounded = ', weights rounded to bf16' if expected['dtype'] == 'BF16' else ''
            line = f"hf-check: {name}: {'ok' if ok else 'FAILED'}, logits relative error {err:.2e} (limit {limit:g}{rounded})"
            if args.loader == 'transformers':
                try:
                    ours, _ = logits_barnraise(folder, expected['inputs'], args.device)
                    same = relative_error(got, ours)
                    same_ok = same <= SAME_WEIGHTS_TOLERANCE
                    line += f"; against barnraise_torch on the same weights {same:.2e} (limit {SAME_WEIGHTS_TOLERANCE:g}){'' if same_ok else ' FAILED'}"
                except Exception as cross:  # noqa: BLE001 — transformers' own result above still stands
                    same_ok = False
                    line += f'; the barnraise_torch cross-check FAILED: {type(cross).__name__}: {cross}'
                if ok and not same_ok:
                    line = line.replace(f'hf-check: {name}: ok,', f'hf-check: {name}: FAILED,', 1)
                ok = ok and same_ok
            print(f'{line}; {how}', flush=True)
        except Exception as e:  # noqa: BLE001 — report every folder, then fail
            ok = False
            print(f'hf-check: {name}: FAILED: {type(e).__name__}: {e}', flush=True)
        failed += 0 if ok else 1
    print(f'hf-check: {len(folders) - failed} of {len(folders)} folders load and match ({args.loader})', flush=True)
    print(f"hf-check: {'FAIL' if failed else 'PASS'}", flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
