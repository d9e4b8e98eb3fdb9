"""The long-lived child process the agent drives: ``python3 -m barnraise_torch.server [--device D] [--threads N]``.

It keeps the model and the inner optimizer resident across rounds. The agent writes requests
as length-prefixed JSON frames on stdin; the server answers on stdout (the real stdout is kept
for frames and file descriptor 1 is pointed at stderr, so a stray print cannot corrupt the
stream). Tensors never travel in frames: base weights, token batches and θ_local are
safetensors files named in the requests. The protocol is documented in ../README.md.
"""
import argparse
import faulthandler
import os
import platform
import queue
import signal
import sys
import threading
import traceback

from . import PROTOCOL_VERSION
from .errors import ExecutorFailure, RanksBroken
from .frames import FrameError, FrameWriter, read_frame

MIN_TORCH = (1, 13)


def _torch_version_tuple(version):
    parts = []
    for piece in version.split('+')[0].split('.')[:2]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def import_torch():
    """Imports torch or raises ExecutorFailure saying what to install."""
    try:
        import torch
    except ImportError as err:
        raise ExecutorFailure('ERR_TORCH_MISSING', f'{sys.executable} (Python {platform.python_version()}) cannot import torch ({err}); '
                              'install it with `sudo apt install python3-torch` (Debian/Ubuntu, CPU) or a CUDA build from https://pytorch.org/get-started/locally/, '
                              'or point the agent at an interpreter that has it with --python PATH') from None
    if _torch_version_tuple(torch.__version__) < MIN_TORCH:
        raise ExecutorFailure('ERR_TORCH_TOO_OLD', f'torch {torch.__version__} is older than {MIN_TORCH[0]}.{MIN_TORCH[1]}; upgrade torch')
    return torch


class Server:
    """Reads requests on one thread (so an abort can arrive mid-round), serves them on the main thread."""

    def __init__(self, frames_in, frames_out, device_name, threads):
        self.out = FrameWriter(frames_out)
        self.frames_in = frames_in
        self.device_name = device_name
        self.threads = threads
        self.requests = queue.Queue()
        self.aborted = set()
        self.closed = False
        self.trainer = None
        self.group = None

    def log(self, message):
        """A line for the agent's log."""
        self.out.send({'type': 'log', 'message': message})

    def _reader(self):
        while True:
            try:
                frame = read_frame(self.frames_in)
            except FrameError as err:
                self.out.send({'type': 'fatal', 'code': 'ERR_PROTOCOL', 'message': str(err)})
                frame = None
            if frame is None:
                # The agent is gone (it closed our stdin, or died): stop the round in progress too.
                self.closed = True
                self.requests.put({'type': 'shutdown'})
                return
            if frame.get('type') == 'abort':
                self.aborted.add(frame.get('id'))
                continue
            self.requests.put(frame)
            if frame.get('type') == 'shutdown':
                return

    def start(self):
        """Imports torch, picks the device and announces ``ready`` (or ``fatal``); returns False on fatal."""
        try:
            torch = import_torch()
            from .device import describe_devices, resolve_device
            from .inner_loop import ResidentTrainer
            from .ranks import launch, parse_device_list
            names = parse_device_list(self.device_name)
            device = resolve_device(names[0])
            if device.type == 'cpu' and self.threads:
                torch.set_num_threads(self.threads)
            if len(names) > 1:
                self.group = launch(names, self.threads, self._worker_exited)
            self.trainer = ResidentTrainer(device, self.log, self.group)
            ready = {
                'type': 'ready', 'protocol': PROTOCOL_VERSION, 'pid': os.getpid(),
                'python': platform.python_version(), 'executable': sys.executable,
                'torch': torch.__version__, 'cuda': torch.version.cuda,
                'threads': torch.get_num_threads(), 'devices': describe_devices(),
                **self.trainer.describe(),
                'ranks': [{'rank': 0, 'device': str(device), 'pid': os.getpid()}] +
                         [{'rank': rank, 'device': name, 'pid': proc.pid} for rank, name, proc in (self.group.workers if self.group else [])],
            }
            if device.type == 'cuda':
                props = torch.cuda.get_device_properties(device)
                ready['deviceName'] = props.name
            self.out.send(ready)
            return True
        except ExecutorFailure as err:
            self.out.send({'type': 'fatal', 'code': err.code, 'message': err.message})
            return False

    def _worker_exited(self, rank, device, code):
        # A rank gone means the others wait forever in their next collective: end the child
        # (the agent sees it exit, restarts it and redoes the round). Its last output says why.
        print(f'barnraise_torch: rank {rank} ({device}) exited with code {code}; stopping this child so the agent restarts it', file=sys.stderr, flush=True)
        os._exit(1)

    def _stop(self):
        try:
            self.trainer.flush()
        except ExecutorFailure as err:
            print(f'barnraise_torch: {err.message}', file=sys.stderr)
        if self.group is not None:
            self.group.close()

    def serve(self):
        """Answers requests until shutdown or end of input."""
        threading.Thread(target=self._reader, name='frame-reader', daemon=True).start()
        while True:
            req = self.requests.get()
            kind = req.get('type')
            if kind == 'shutdown':
                self._stop()
                return
            rid = req.get('id')
            try:
                try:
                    result = self.handle(kind, req)
                    self.out.send({'type': 'result', 'id': rid, 'result': result})
                except ExecutorFailure as err:
                    self.out.send(err.to_frame(rid))
                except (BrokenPipeError, ConnectionResetError):
                    raise
                except RanksBroken as err:
                    print(f'barnraise_torch: {err}; stopping this child so the agent restarts it', file=sys.stderr, flush=True)
                    os._exit(1)
                except Exception as err:  # noqa: BLE001 — the agent must get an answer for every request
                    traceback.print_exc(file=sys.stderr)
                    self.out.send({'type': 'error', 'id': rid, 'code': 'ERR_INTERNAL', 'message': f'{type(err).__name__}: {err}', 'retryable': True})
            except (BrokenPipeError, ConnectionResetError):
                # Nobody reads our answers any more; the reader thread has queued the shutdown.
                self.closed = True
            finally:
                self.aborted.discard(rid)

    def handle(self, kind, req):
        """One request's answer (raises ExecutorFailure for a refusal)."""
        from .config import parse_config
        t = self.trainer
        if kind == 'train':
            rid = req.get('id')
            return t.train(req, lambda p: self.out.send({'type': 'progress', 'id': rid, **p}), lambda: self.closed or rid in self.aborted)
        if kind == 'fit':
            return t.fit(parse_config(req['config']), req['batchSize'], req['seqLen'], req.get('precision', 'auto'), req.get('checkpointing', 'auto'), req.get('memoryLimitBytes'), req.get('sharding', 'auto'))
        if kind == 'measure':
            return t.measure(parse_config(req['config']), req['batchSize'], req['seqLen'], req.get('steps', 5), req.get('precision', 'auto'))
        if kind == 'flush':
            t.flush()
            return {}
        if kind == 'evaluate':
            # On this child's own device (rank 0's on several): a forward pass needs no collective.
            from .evaluate import held_out_losses
            return held_out_losses(parse_config(req['config']), req['weightsFile'], req['windowsFile'], t.device, req.get('deltaFile'), req.get('scales', [0.0]))
        if kind == 'golden':
            from .golden import check_golden_file
            return {'rows': check_golden_file(req['file'], t.device)}
        raise ExecutorFailure('ERR_PROTOCOL', f'unknown request type {kind!r}')


def main(argv=None):
    """Entry point: keeps stdout for frames, sends ready/fatal, then serves."""
    parser = argparse.ArgumentParser(prog='python3 -m barnraise_torch.server')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N, or several: cuda:0,cuda:1 or cuda:all (cpu,cpu for tests)')
    parser.add_argument('--threads', type=int, default=0, help='CPU threads for torch (0: torch\'s default)')
    args = parser.parse_args(argv)
    # Ctrl-C in the agent's terminal reaches the whole process group; the agent decides when we
    # stop (shutdown frame or end of stdin), so a round's state is never cut off half-written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # `kill -USR1 PID` prints every thread's stack to stderr: how to see where a rank waits.
    faulthandler.register(signal.SIGUSR1)
    frames_out = os.fdopen(os.dup(1), 'wb', buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    frames_in = os.fdopen(os.dup(0), 'rb', buffering=0)
    server = Server(frames_in, frames_out, args.device, args.threads)
    if not server.start():
        return 3
    server.serve()
    if server.group is not None:
        # Skip interpreter teardown: the state file is written (serve waited for it), and freeing
        # DistributedDataParallel's process group at exit can block (see ranks.RankGroup.close).
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
