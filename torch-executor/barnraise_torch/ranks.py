"""One node, several devices: data parallel across ranks inside the torch child.

``--device cuda:0,cuda:1`` (or ``cuda:all``; ``cpu,cpu`` on a machine without GPUs, for tests)
makes the server rank 0 of a ``torch.distributed`` group and starts one worker process per
further device (``python3 -m barnraise_torch.rank``). Every rank keeps a full replica of the
model, trains on its share of each step's batch rows, and DistributedDataParallel averages the
ranks' gradients (each rank's loss scaled by its share of the rows × the ranks) before
clipping, so a step is the same step one device would take on the whole batch. Because every
rank then applies identical gradients to identical weights, no broadcast of weights is needed
after a step; rank 0 alone writes θ_local and the optimizer state.

When a replica of the model, its gradients and AdamW's moments does not fit each device, the
moments are sharded instead (ZeRO stage 1): each rank owns a contiguous run of parameters
(``owned_ranges``), steps only those, and broadcasts them to the others after the step. AdamW
treats every parameter on its own, so the step is the same; the moments and AdamW's
temporaries cost 12 bytes a parameter ÷ the ranks instead of 12 on each, at one broadcast of
the weights a step. Each rank then writes its range of the flat state file itself (rank 0
still writes θ_local alone).

Two process groups: tensors (gradients, the per-step loss) go over NCCL on CUDA and gloo on
the CPU; commands (train, fit, measure, shutdown) go over gloo as pickled objects, always from
rank 0. The rendezvous is a file in a private temporary folder, so nothing listens on a port.
A worker that dies takes the whole child down (rank 0 watches them): the agent restarts the
child and redoes the round, as for any crash.
"""
import ctypes
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import torch
import torch.distributed as dist

from .device import resolve_device
from .errors import ExecutorFailure

# Weights a sharded optimizer's ranks send each other in one collective (DDP's bucket size).
BROADCAST_BUCKET_BYTES = 25 * 1024 ** 2

# A collective that waits longer than this means a rank is gone or stuck.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


def parse_device_list(spec: str):
    """``cuda:all``, or devices separated by commas; one entry is one device and no group."""
    if spec == 'cuda:all':
        resolve_device('cuda')  # says what is wrong when CUDA is missing
        return [f'cuda:{i}' for i in range(torch.cuda.device_count())]
    names = [part.strip() for part in spec.split(',')]
    if any(name == '' for name in names):
        raise ExecutorFailure('ERR_BAD_DEVICE', f'device list "{spec}" has an empty entry; write e.g. cuda:0,cuda:1')
    if len(names) == 1:
        return names
    devices = [resolve_device(name) for name in names]
    kinds = {d.type for d in devices}
    if len(kinds) > 1:
        raise ExecutorFailure('ERR_BAD_DEVICE', f'device list "{spec}" mixes the CPU and GPUs; a node trains on GPUs or on the CPU, not both')
    cuda = [str(d) for d in devices if d.type == 'cuda']
    if len(set(cuda)) != len(cuda):
        raise ExecutorFailure('ERR_BAD_DEVICE', f'device list "{spec}" names a GPU twice; each rank needs its own GPU')
    return [str(d) for d in devices]


def owned_ranges(sizes, world: int):
    """Splits parameters (sizes in checkpoint order) into ``world`` contiguous runs of about equal
    weight count, one per rank: ``[(first, end), ...]``, each with at least one parameter.

    Contiguous so that a rank's AdamW moments are one range of the flat state file.
    """
    if len(sizes) < world:
        raise ValueError(f'{len(sizes)} parameters cannot be shared by {world} ranks')
    prefix = [0]
    for n in sizes:
        prefix.append(prefix[-1] + n)
    bounds = [0]
    for k in range(1, world):
        target = prefix[-1] * k / world
        # Leave at least one parameter for each rank still to come.
        last = len(sizes) - (world - k)
        i = bounds[-1] + 1
        while i < last and prefix[i] < target:
            i += 1
        if i - 1 > bounds[-1] and target - prefix[i - 1] < prefix[i] - target:
            i -= 1
        bounds.append(i)
    bounds.append(len(sizes))
    return [(bounds[r], bounds[r + 1]) for r in range(world)]


def _buckets(params, limit_bytes):
    """Consecutive parameters grouped up to ``limit_bytes`` each (a larger one alone)."""
    bucket, size = [], 0
    for p in params:
        nbytes = p.numel() * p.element_size()
        if bucket and size + nbytes > limit_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += nbytes
    if bucket:
        yield bucket


def row_share(batch: int, rank: int, world: int):
    """The rows of a step's batch that ``rank`` trains: as even a split as there is, in order."""
    start = rank * batch // world
    return start, (rank + 1) * batch // world


class RankGroup:
    """This process's place in the group, and the collectives the trainer needs."""

    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank = rank
        self.world = world
        self.device = device
        self.control = None
        self.workers = []  # rank 0: [(rank, device name, Popen)]
        self._folder = None
        self._closing = threading.Event()

    def _join(self, init_method: str):
        backend = 'nccl' if self.device.type == 'cuda' else 'gloo'
        if self.device.type == 'cuda':
            torch.cuda.set_device(self.device)
        # One machine: keep gloo's and NCCL's own sockets on loopback unless told otherwise.
        os.environ.setdefault('GLOO_SOCKET_IFNAME', 'lo')
        os.environ.setdefault('NCCL_SOCKET_IFNAME', 'lo')
        dist.init_process_group(backend, init_method=init_method, rank=self.rank, world_size=self.world, timeout=COLLECTIVE_TIMEOUT)
        self.control = dist.new_group(backend='gloo', timeout=COLLECTIVE_TIMEOUT) if backend != 'gloo' else dist.group.WORLD

    # -- commands (rank 0 → every rank) ------------------------------------------------------

    def broadcast(self, message=None):
        """Rank 0 sends ``message``; every rank returns it."""
        box = [message]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def all_gather(self, value):
        """Every rank's ``value``, in rank order."""
        out = [None] * self.world
        dist.all_gather_object(out, value, group=self.control)
        return out

    # -- tensors -----------------------------------------------------------------------------

    def data_parallel(self, model):
        """``model``'s loss behind DistributedDataParallel: a call returns the loss, and its backward averages the ranks' gradients.

        DDP all-reduces gradients in buckets while the backward pass is still running, so the
        communication hides behind computation; the gradients are views into those buckets
        (no second copy of them).
        """
        from torch.nn.parallel import DistributedDataParallel
        return DistributedDataParallel(_LossOf(model), device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                                       broadcast_buffers=False, gradient_as_bucket_view=True)

    def broadcast_owned(self, params, ranges):
        """After a sharded optimizer step: every rank sends the parameters it owns (``ranges`` from
        ``owned_ranges``) to the others, so all replicas hold the stepped weights again.

        Small parameters travel together in buckets of up to ``BROADCAST_BUCKET_BYTES`` (one
        collective each, not one per tensor); one bucket is in flight at a time, so the copy
        costs at most one bucket of memory.
        """
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
        for owner, (first, end) in enumerate(ranges):
            for bucket in _buckets(params[first:end], BROADCAST_BUCKET_BYTES):
                if len(bucket) == 1:
                    dist.broadcast(bucket[0].data, src=owner)
                    continue
                tensors = [p.data for p in bucket]
                if self.rank == owner:
                    dist.broadcast(_flatten_dense_tensors(tensors), src=owner)
                    continue
                flat = torch.empty(sum(t.numel() for t in tensors), dtype=tensors[0].dtype, device=tensors[0].device)
                dist.broadcast(flat, src=owner)
                for t, value in zip(tensors, _unflatten_dense_tensors(flat, tensors)):
                    t.copy_(value)

    def barrier(self):
        """Waits until every rank gets here (over the command group)."""
        dist.barrier(group=self.control)

    def sum_values(self, values):
        """Sums a few float64 numbers over the ranks."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def rows(self, batch: int):
        """This rank's share of a batch."""
        return row_share(batch, self.rank, self.world)

    # -- lifetime ----------------------------------------------------------------------------

    def close(self):
        """Rank 0: tells the workers to stop, waits for them, removes the rendezvous folder.

        The process group is left for the process's end (the server exits right after): freeing
        DistributedDataParallel after its group is destroyed can block forever.
        """
        self._closing.set()
        try:
            self.broadcast({'type': 'shutdown'})
        except RuntimeError:
            pass  # a worker is already gone; killing it below is all that is left
        for _, _, proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


class _LossOf(torch.nn.Module):
    """DDP hooks the forward of the module it wraps: this one's forward is the model's loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, windows):
        return self.model.loss(windows)


def _package_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(devices, threads: int, on_worker_exit):
    """Rank 0: starts a worker per further device, joins the group with them, and watches them.

    ``on_worker_exit(rank, device, code)`` is called (on a watcher thread) if a worker ends
    before ``close``; the server then stops the whole child.
    """
    folder = tempfile.mkdtemp(prefix='barnraise-ranks-')
    init_method = 'file://' + os.path.join(folder, 'rendezvous')
    group = RankGroup(0, len(devices), resolve_device(devices[0]))
    group._folder = folder
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([_package_root(), *filter(None, [os.environ.get('PYTHONPATH')])]), 'PYTHONDONTWRITEBYTECODE': '1'}
    for rank, name in enumerate(devices[1:], start=1):
        cmd = [sys.executable, '-m', 'barnraise_torch.rank', '--rank', str(rank), '--world', str(len(devices)),
               '--init', init_method, '--device', name, '--threads', str(threads), '--parent', str(os.getpid())]
        # The worker's stdout is our stderr: only rank 0 speaks the frame protocol.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(), env=env, cwd=_package_root())
        group.workers.append((rank, name, proc))

    def watch():
        while not group._closing.wait(0.5):
            for rank, name, proc in group.workers:
                code = proc.poll()
                # A worker ending after close() began is the shutdown, not a crash.
                if code is not None and not group._closing.is_set():
                    on_worker_exit(rank, name, code)
                    return

    threading.Thread(target=watch, name='rank-watcher', daemon=True).start()
    try:
        group._join(init_method)
    except RuntimeError as err:
        group._closing.set()  # the workers are ended here, not crashed
        for _, _, proc in group.workers:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
        if group.device.type == 'cuda':
            backend, hint = 'NCCL', 'check that every GPU is visible to this process (CUDA_VISIBLE_DEVICES) and that NCCL works (`NCCL_DEBUG=INFO`), or join with one device (--device cuda:0) per agent'
        else:
            backend, hint = 'gloo', 'check that GLOO_SOCKET_IFNAME, if set, names a network interface of this machine (default: lo)'
        raise ExecutorFailure('ERR_RANKS_START', f'the {len(devices)} ranks on {",".join(devices)} could not form a {backend} group ({str(err).splitlines()[0][:300]}); {hint}') from None
    return group


def join(rank: int, world: int, init_method: str, device: torch.device):
    """A worker's end of ``launch``."""
    group = RankGroup(rank, world, device)
    group._join(init_method)
    return group


def die_with_parent(parent_pid: int):
    """A worker must not outlive rank 0 (the agent only knows rank 0's pid)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    # prctl covers the parent dying from here on; it may already have died before this ran.
    if os.getppid() != parent_pid:
        os._exit(1)
