"""The inner optimizer's schedule and state file, as ``trainer/src/optim`` defines them.

- ``learning_rate_at``: linear warmup to the peak, cosine decay to min_lr at total_steps, flat after
  (``schedule.ts``), indexed by the run's global inner step so it continues across rounds.
- The AdamW state file is the TypeScript executor's own format (``state-file.ts``): a safetensors
  file with flat F32 tensors ``m`` and ``v`` over all weights in checkpoint order and
  ``__metadata__`` ``{format: barnraise-optimizer-v1, kind: adamw, step}``. Either executor can
  therefore pick up the other's state when a node switches.
"""
import math
import os

import numpy as np
import torch

from .safetensors import SafetensorsError, header_bytes, read_header, write_file

STATE_FILE = 'inner-adamw.safetensors'


def learning_rate_at(step, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate for optimizer step ``step`` (0-based: the step about to run)."""
    if not step >= 0:
        raise ValueError(f'step {step} must be a non-negative number')
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def make_adamw(params, lr, betas, weight_decay, device):
    """torch.optim.AdamW, fused into one kernel on CUDA when this torch has it, else its default path."""
    kwargs = {'lr': lr, 'betas': betas, 'eps': 1e-8, 'weight_decay': weight_decay}
    if device.type == 'cuda':
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs), 'fused'
        except (TypeError, RuntimeError, ValueError):
            pass
        try:
            return torch.optim.AdamW(params, foreach=True, **kwargs), 'foreach'
        except (TypeError, RuntimeError, ValueError):
            pass
    return torch.optim.AdamW(params, **kwargs), 'single-tensor'


def adamw_step_count(optimizer):
    """Steps AdamW has taken (torch keeps it per parameter; ours all move together)."""
    for state in optimizer.state.values():
        step = state.get('step')
        if step is not None:
            return int(step.item()) if torch.is_tensor(step) else int(step)
    return 0


def export_state(optimizer, ordered):
    """(step, m, v) as flat float32 numpy arrays in checkpoint order (zeros before the first step)."""
    step = adamw_step_count(optimizer)
    total = sum(p.numel() for _, p in ordered)
    m = np.zeros(total, dtype=np.float32)
    v = np.zeros(total, dtype=np.float32)
    at = 0
    for _, p in ordered:
        n = p.numel()
        state = optimizer.state.get(p)
        if state and 'exp_avg' in state:
            m[at:at + n] = state['exp_avg'].detach().float().reshape(-1).cpu().numpy()
            v[at:at + n] = state['exp_avg_sq'].detach().float().reshape(-1).cpu().numpy()
        at += n
    return step, m, v


def import_state(optimizer, ordered, step, m, v):
    """Resumes AdamW from flat moments, through load_state_dict so torch places them as it needs (fused wants the step on the GPU)."""
    state = {}
    at = 0
    if step > 0:
        for i, (_, p) in enumerate(ordered):
            n = p.numel()
            state[i] = {
                'step': torch.tensor(float(step)),
                'exp_avg': torch.from_numpy(m[at:at + n].reshape(p.shape).copy()),
                'exp_avg_sq': torch.from_numpy(v[at:at + n].reshape(p.shape).copy()),
            }
            at += n
    groups = optimizer.state_dict()['param_groups']
    optimizer.load_state_dict({'state': state, 'param_groups': groups})


def write_state_file(path, step, m, v):
    """Writes the state file (temp + rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_file(path, {'m': m, 'v': v}, _state_metadata(step))


def _state_metadata(step):
    return {'format': 'barnraise-optimizer-v1', 'kind': 'adamw', 'step': str(step)}


def read_state_file(path, size, part=None):
    """(step, m, v) from a state file that fits a model of ``size`` weights; None when absent or for another model.

    ``part`` = (offset, count) reads only those weights' moments (a rank's shard). Raises
    ValueError with what to do when the file exists but is unreadable.
    """
    if not os.path.exists(path):
        return None
    fix = 'delete it to start the optimizer afresh'
    try:
        with open(path, 'rb') as f:
            metadata, entries, start = read_header(f, os.path.getsize(path))
            if metadata.get('format') != 'barnraise-optimizer-v1' or metadata.get('kind') != 'adamw':
                raise ValueError(f'{path} is not an AdamW state file; {fix}')
            try:
                step = int(metadata.get('step', ''))
            except ValueError:
                raise ValueError(f'{path}: step {metadata.get("step")!r} is not an integer; {fix}') from None
            found = {name: (dtype, shape, begin, end) for name, dtype, shape, begin, end in entries}
            if any(found.get(k, ('',))[0] != 'F32' for k in ('m', 'v')):
                raise ValueError(f'{path} lacks F32 tensors m and v; {fix}')
            if any(found[k][1] != [size] for k in ('m', 'v')):
                return None
            offset, count = part if part is not None else (0, size)
            out = []
            for k in ('m', 'v'):
                f.seek(start + found[k][2] + 4 * offset)
                array = np.fromfile(f, dtype='<f4', count=count)
                if array.size != count:
                    raise SafetensorsError('ERR_TRUNCATED', f'tensor "{k}" was cut short while reading')
                out.append(array)
    except (OSError, SafetensorsError) as err:
        raise ValueError(f'inner optimizer state {path} is unreadable ({err}); {fix}') from None
    return step, out[0], out[1]


def _shared_layout(size, step):
    """The header and data offset ``write_file`` gives flat m and v of ``size`` weights."""
    return header_bytes([('m', 'F32', [size]), ('v', 'F32', [size])], _state_metadata(step))


def partial_state_path(path):
    """Where the ranks of a sharded optimizer assemble the state file before it is renamed into place."""
    return path + '.partial'


def create_shared_state_file(path, size, step):
    """Rank 0, before any rank writes: the partial file with its header, sized for every moment."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    head, data_start = _shared_layout(size, step)
    with open(partial_state_path(path), 'wb') as f:
        f.write(head)
        f.truncate(data_start + 8 * size)


def write_state_part(path, size, step, offset, m, v):
    """One rank's moments (weights ``offset`` … ``offset + len(m)``) into the partial file."""
    _, data_start = _shared_layout(size, step)
    fd = os.open(partial_state_path(path), os.O_WRONLY)
    try:
        for base, array in ((data_start, m), (data_start + 4 * size, v)):
            view = memoryview(np.ascontiguousarray(array, dtype='<f4')).cast('B')
            at = base + 4 * offset
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
    finally:
        os.close(fd)


def finish_shared_state_file(path):
    """Rank 0, after every rank wrote its part: renames the partial file into place."""
    os.replace(partial_state_path(path), path)
