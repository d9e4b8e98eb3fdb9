"""Known-answer checks against ``trainer/test-data/golden/*.safetensors`` (see the README there).

Kinds: ``llama-forward-backward`` (logits, loss and every gradient of the model),
``adamw`` (torch.optim.AdamW, the inner optimizer) and ``nesterov-outer`` (torch.optim.SGD
with Nesterov momentum, the outer step). Each compared tensor is one row whose value is the
relative error ||ours − ref|| / ||ref|| (float64 sums).
"""
import json
import os

import numpy as np
import torch

from .config import parse_config
from .device import use_ieee_float32_matmuls
from .errors import ExecutorFailure
from .model import LlamaForCausalLM
from .safetensors import SafetensorsError, read_file

MODEL_THRESHOLD = 1e-4
PARAMS_THRESHOLD = 1e-4
# An AdamW update is ~1e-3 of the parameter; float32 rounding of the parameter alone is ~6e-5 of it.
ADAMW_UPDATE_THRESHOLD = 1e-3

GOLDEN_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', 'trainer', 'test-data', 'golden'))
SHIPPED = ['llama-tiny-gqa', 'llama-tiny-tied', 'adamw', 'nesterov-outer']


def relative_error(ours, ref):
    """||ours − ref|| / ||ref|| in float64; inf when shapes differ."""
    a = np.asarray(ours, dtype=np.float64).reshape(-1)
    b = np.asarray(ref, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        return float('inf')
    den = float(np.sum(b * b))
    num = float(np.sum((a - b) ** 2))
    if den == 0:
        return 0.0 if num == 0 else float('inf')
    return float(np.sqrt(num / den))


def _row(name, value, threshold=MODEL_THRESHOLD, rel_err=True, unit=None):
    row = {'name': name, 'value': value, 'threshold': threshold, 'relErr': rel_err}
    if unit is not None:
        row['unit'] = unit
    return row


def _tensor(tensors, name):
    t = tensors.get(name)
    if t is None:
        raise ExecutorFailure('ERR_BAD_GOLDEN', f'golden file has no tensor "{name}"')
    return t


def check_llama(metadata, tensors, device):
    """Forward and backward of the golden model in float32 on ``device``; one row per compared tensor."""
    try:
        config = parse_config(json.loads(metadata.get('config', '')))
    except ValueError:
        raise ExecutorFailure('ERR_BAD_GOLDEN', 'golden file metadata "config" is missing or not JSON') from None
    model = LlamaForCausalLM(config, device)
    # The reference is float64; TF32 matmuls on Ampere+ would cost three digits. (No convolutions,
    # so cuDNN's own TF32 flag does not matter; leaving it alone avoids the legacy flag that
    # torch ≥ 2.9 deprecates.)
    if device.type == 'cuda':
        use_ieee_float32_matmuls()
    with torch.no_grad():
        for name, p in model.ordered_parameters():
            p.copy_(torch.from_numpy(_tensor(tensors, f'param/{name}').to_float32().copy()))
    ids = torch.from_numpy(_tensor(tensors, 'input_ids').to_int64().copy()).to(device)
    if ids.dim() != 2 or ids.shape[1] < 2:
        raise ExecutorFailure('ERR_BAD_GOLDEN', 'golden file needs "input_ids" of shape [batch, seqLen + 1] with seqLen ≥ 1')
    rows = []
    logits = model(ids[:, :-1])
    rows.append(_row('logits', relative_error(logits.detach().cpu().numpy(), _tensor(tensors, 'logits').to_float32())))
    loss = model.loss(ids)
    loss.backward()
    rows.append(_row('loss', relative_error([loss.item()], _tensor(tensors, 'loss').to_float32().reshape(-1))))
    for name, p in model.ordered_parameters():
        rows.append(_row(f'grad/{name}', relative_error(p.grad.cpu().numpy(), _tensor(tensors, f'grad/{name}').to_float32())))
    return rows


def check_optimizer(metadata, tensors, kind, device):
    """Steps torch's optimizer through the file's inputs; rows for the parameters and for the update."""
    try:
        hp = json.loads(metadata.get('hyperparameters', ''))
    except ValueError:
        raise ExecutorFailure('ERR_BAD_GOLDEN', 'golden file metadata "hyperparameters" is missing or not JSON') from None
    param = torch.nn.Parameter(torch.from_numpy(_tensor(tensors, 'param').to_float32().copy()).to(device))
    if kind == 'adamw':
        opt = torch.optim.AdamW([param], lr=hp['lr'], betas=(hp.get('beta1', 0.9), hp.get('beta2', 0.999)), eps=hp.get('eps', 1e-8), weight_decay=hp.get('weight_decay', 0.01))
        input_name = 'grad_step'
    else:
        opt = torch.optim.SGD([param], lr=hp['lr'], momentum=hp['momentum'], nesterov=True)
        input_name = 'pseudo_grad_step'
    rows = []
    k = 1
    while f'{input_name}{k}' in tensors:
        before = param.detach().cpu().numpy().astype(np.float64)
        param.grad = torch.from_numpy(tensors[f'{input_name}{k}'].to_float32().copy()).to(device)
        opt.step()
        after = param.detach().cpu().numpy().astype(np.float64)
        want = _tensor(tensors, f'expected_after_step{k}').to_float32().astype(np.float64)
        rows.append(_row(f'step {k} params', relative_error(after, want), PARAMS_THRESHOLD))
        bar = ADAMW_UPDATE_THRESHOLD if kind == 'adamw' else PARAMS_THRESHOLD
        rows.append(_row(f'step {k} update', relative_error(after - before, want - before), bar, False, 'update rel err'))
        k += 1
    if not rows:
        raise ExecutorFailure('ERR_BAD_GOLDEN', f'golden file has no "{input_name}1" tensor')
    return rows


def check_golden_file(path, device=torch.device('cpu')):
    """Runs the check a golden file asks for (by its ``kind``)."""
    try:
        metadata, tensors = read_file(path)
    except (OSError, SafetensorsError) as err:
        raise ExecutorFailure('ERR_BAD_GOLDEN', f'{path}: {err}') from None
    kind = metadata.get('kind')
    if kind == 'llama-forward-backward':
        rows = check_llama(metadata, tensors, device)
    elif kind in ('adamw', 'nesterov-outer'):
        rows = check_optimizer(metadata, tensors, kind, device)
    else:
        raise ExecutorFailure('ERR_BAD_GOLDEN', f'golden file kind {json.dumps(kind)} is not one of llama-forward-backward, adamw, nesterov-outer')
    return rows
