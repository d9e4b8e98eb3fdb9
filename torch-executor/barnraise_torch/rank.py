"""A worker rank of a multi-device torch child (see ranks.py); started by rank 0, never by hand.

It follows rank 0's commands until told to stop. A refusal every rank shares (a bad input file,
an aborted round) is logged and the worker waits for the next command; anything else ends the
process, and rank 0 then stops the whole child so the agent restarts it.
"""
import argparse
import faulthandler
import os
import signal
import sys
import traceback

from .errors import ExecutorFailure


def main(argv=None):
    """Joins the group and serves rank 0's commands."""
    parser = argparse.ArgumentParser(prog='python3 -m barnraise_torch.rank')
    parser.add_argument('--rank', type=int, required=True)
    parser.add_argument('--world', type=int, required=True)
    parser.add_argument('--init', required=True)
    parser.add_argument('--device', required=True)
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--parent', type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # `kill -USR1 PID` prints every thread's stack to stderr: how to see where a rank waits.
    faulthandler.register(signal.SIGUSR1)
    from .ranks import die_with_parent, join
    die_with_parent(args.parent)
    from .server import import_torch
    torch = import_torch()
    from .device import resolve_device
    from .inner_loop import ResidentTrainer
    device = resolve_device(args.device)
    if device.type == 'cpu' and args.threads:
        torch.set_num_threads(args.threads)
    prefix = f'barnraise_torch rank {args.rank} ({device})'
    group = join(args.rank, args.world, args.init, device)
    trainer = ResidentTrainer(device, lambda line: print(f'{prefix}: {line}', file=sys.stderr, flush=True), group=group)
    while True:
        message = group.broadcast()
        kind = message.get('type')
        if kind == 'shutdown':
            break
        try:
            trainer.follow(message)
        except ExecutorFailure as err:
            print(f'{prefix}: {err.code}: {err.message}', file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 — rank 0 sees this process end and stops the child
            traceback.print_exc(file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # A worker's only file (its part of a sharded optimizer's state) is complete before rank 0
    # renames it, so nothing is lost by skipping teardown; freeing a
    # DistributedDataParallel whose process group is gone can block forever (gloo, torch 1.13).
    os._exit(code)
