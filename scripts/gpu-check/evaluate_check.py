"""Measures the checkpoint scripts/gpu-check/prepare.ts wrote to <root>/validation-loss as the coordinator does.

    python3 scripts/gpu-check/evaluate_check.py test-artifacts/gpu-check                 # cuda and cpu
    python3 scripts/gpu-check/evaluate_check.py test-artifacts/gpu-check --devices cpu   # anywhere

Runs ``python3 -m barnraise_torch.evaluate`` (the coordinator's ``--evaluator torch``) once per
device on the same config.json, model.safetensors and windows the coordinator would write, and
prints each loss, its seconds, and the relative differences: GPU against CPU, and each against
the TypeScript forward pass's loss (expected-loss.json). Both must agree within 1e-4 relative:
float32 with IEEE matmuls everywhere, so a larger gap means TF32 or bf16 crept in, or the GPU
reads the files differently. Prints ``evaluate-check: PASS`` or ``FAIL``; exits 1 on FAIL.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_EXECUTOR = os.path.join(HERE, '..', '..', 'torch-executor')
TOLERANCE = 1e-4


def measure(folder, device):
    """The evaluate CLI's JSON answer on `device`, or its error."""
    done = subprocess.run([sys.executable, '-m', 'barnraise_torch.evaluate', '--config', os.path.join(folder, 'config.json'),
                           '--weights', os.path.join(folder, 'model.safetensors'), '--windows', os.path.join(folder, 'windows.safetensors'),
                           '--device', device], cwd=TORCH_EXECUTOR, capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {'error': {'code': f'exit {done.returncode}', 'message': (done.stderr.strip().splitlines() or ['(no output)'])[-1]}}
    return answer


def main(argv=None):
    parser = argparse.ArgumentParser(prog='evaluate_check.py')
    parser.add_argument('root', help='the folder prepare.ts wrote')
    parser.add_argument('--devices', default='cuda,cpu', help='comma-separated devices to measure on (default cuda,cpu)')
    args = parser.parse_args(argv)
    folder = os.path.join(args.root, 'validation-loss')
    try:
        with open(os.path.join(folder, 'expected-loss.json')) as f:
            expected = json.load(f)
    except OSError as err:
        print(f'evaluate-check: {err}; run bin/node scripts/gpu-check/prepare.ts first', flush=True)
        print('evaluate-check: FAIL', flush=True)
        return 1
    print(f"evaluate-check: TypeScript forward pass {expected['loss']:.9f} ({expected['batches']} × {expected['batchSize']} windows of {expected['seqLen']} tokens)", flush=True)
    losses = {}
    ok = True
    for device in args.devices.split(','):
        answer = measure(folder, device)
        if 'error' in answer or answer.get('losses', [None])[0] is None:
            print(f'evaluate-check: {device}: FAILED {answer.get("error", "no finite loss")}', flush=True)
            ok = False
            continue
        loss = answer['losses'][0]
        losses[device] = loss
        diff = abs(loss - expected['loss']) / expected['loss']
        ok = ok and diff <= TOLERANCE
        print(f"evaluate-check: {device} ({answer['device']}, {answer['attention']} attention): {loss:.9f} in {answer['seconds']:.2f} s, "
              f"relative difference to TypeScript {diff:.2e}{'' if diff <= TOLERANCE else ' > 1e-4'}", flush=True)
    if 'cuda' in losses and 'cpu' in losses:
        diff = abs(losses['cuda'] - losses['cpu']) / losses['cpu']
        ok = ok and diff <= TOLERANCE
        print(f"evaluate-check: cuda {losses['cuda']:.9f} vs cpu {losses['cpu']:.9f}: relative difference {diff:.2e}{'' if diff <= TOLERANCE else ' > 1e-4'}", flush=True)
    print(f"evaluate-check: {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
