"""``python3 -m barnraise_torch.selftest [--golden FILE] [--device cpu|cuda|cuda:N]``

Known-answer check of this machine's PyTorch against the golden files, without Node. With no
``--golden`` it checks every file shipped in ``trainer/test-data/golden``. Prints one row per
compared tensor and ends with ``selftest: PASS max_rel_err=…`` (exit 0) or ``selftest: FAIL …``
(exit 1); 2 for bad usage or an unreadable file.
"""
import argparse
import os
import sys

from .errors import ExecutorFailure


def js_exp(value, digits):
    """Formats like JavaScript's toExponential (``9.86e-7``), so both self-tests print the same table."""
    if value != value:
        return 'NaN'
    if value in (float('inf'), float('-inf')):
        return 'Infinity' if value > 0 else '-Infinity'
    mantissa, exponent = f'{value:.{digits}e}'.split('e')
    return f'{mantissa}e{int(exponent):+d}'


def passes(row):
    """Within the row's bar (NaN never is)."""
    return row['value'] <= row['threshold']


def format_table(rows):
    """The same table ``barnraise-agent selftest`` prints."""
    width = max([5] + [len(r['name']) for r in rows])
    lines = [f"{'check'.ljust(width)}  {'error'.rjust(10)}  {'threshold'.rjust(9)}  result"]
    for r in rows:
        value = 'NaN' if r['value'] != r['value'] else js_exp(r['value'], 2)
        unit = '' if r['relErr'] else f" ({r.get('unit', 'ratio')})"
        lines.append(f"{r['name'].ljust(width)}  {value.rjust(10)}  {js_exp(r['threshold'], 0).rjust(9)}  {'ok' if passes(r) else 'FAIL'}{unit}")
    return '\n'.join(lines) + '\n'


def summary(rows):
    """The last line: PASS or FAIL with the worst relative error."""
    rel = [r['value'] for r in rows if r['relErr']]
    worst = max([float('inf') if v != v else v for v in rel] + [0.0])
    failed = [r for r in rows if not passes(r)]
    if not failed:
        return f'selftest: PASS max_rel_err={js_exp(worst, 2)}', 0
    names = ', '.join(r['name'] for r in failed)
    return f'selftest: FAIL {len(failed)} of {len(rows)} checks over their threshold ({names}) max_rel_err={js_exp(worst, 2)}', 1


def main(argv=None):
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog='python3 -m barnraise_torch.selftest', description='Known-answer checks of the PyTorch executor.')
    parser.add_argument('--golden', help='one golden file (default: every shipped file)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (float32 either way)')
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError as err:
        print(f'selftest: FAIL torch is not importable ({err}); install python3-torch (Debian/Ubuntu) or a CUDA build of torch', flush=True)
        return 2
    from .device import resolve_device
    from .golden import GOLDEN_DIR, SHIPPED, check_golden_file
    try:
        device = resolve_device(args.device)
        if args.golden is not None:
            rows = check_golden_file(args.golden, device)
        else:
            rows = []
            for name in SHIPPED:
                file_rows = check_golden_file(os.path.join(GOLDEN_DIR, f'{name}.safetensors'), device)
                worst = max(file_rows, key=lambda r: float('inf') if r['value'] != r['value'] else r['value'] / r['threshold'])
                rows.append({**worst, 'name': f'golden {name} (worst of {len(file_rows)})'})
    except ExecutorFailure as err:
        print(f'selftest: {err.code}: {err.message}', file=sys.stderr)
        print(f'selftest: FAIL {err.message}', flush=True)
        return 2
    print(f'selftest: torch {torch.__version__} on {device}', flush=True)
    sys.stdout.write(format_table(rows))
    line, code = summary(rows)
    print(line, flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
