"""Device choice, feature detection and the memory fit estimate.

Everything is feature-detected so the same code runs on torch 1.13 on a CPU (Debian's
python3-torch) and on a CUDA build of torch 2.x: fused AdamW, scaled-dot-product attention and
bf16 are used only where the installed torch and GPU have them.
"""
import inspect
import os

import torch
import torch.nn.functional as F

from .config import LlamaConfig, count_params
from .errors import ExecutorFailure

GIB = 1024 ** 3


def resolve_device(name: str) -> torch.device:
    """``auto`` (first CUDA device, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; says what to install when CUDA is missing."""
    if name == 'auto':
        return torch.device('cuda:0') if torch.cuda.is_available() else torch.device('cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ExecutorFailure('ERR_BAD_DEVICE', f'device "{name}" is not cpu, cuda or cuda:N') from None
    if device.type == 'cpu':
        return device
    if device.type != 'cuda':
        raise ExecutorFailure('ERR_BAD_DEVICE', f'device "{name}" is not cpu, cuda or cuda:N')
    if torch.version.cuda is None:
        raise ExecutorFailure('ERR_CUDA_UNAVAILABLE', f'CUDA was requested but this torch ({torch.__version__}) was built without CUDA; install a CUDA build of torch (https://pytorch.org/get-started/locally/) or use --device cpu')
    if not torch.cuda.is_available():
        raise ExecutorFailure('ERR_CUDA_UNAVAILABLE', f'CUDA was requested but torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable GPU; check that the NVIDIA driver is installed and recent enough for CUDA {torch.version.cuda} (`nvidia-smi` must work), or use --device cpu')
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise ExecutorFailure('ERR_CUDA_UNAVAILABLE', f'device cuda:{index} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)')
    return torch.device('cuda', index)


def supports_bf16(device: torch.device) -> bool:
    """bf16 autocast pays off on GPUs with bf16 tensor cores (Ampere and later, compute capability ≥ 8).

    Not ``torch.cuda.is_bf16_supported()``: since torch 2.4 it defaults to
    ``including_emulation=True`` and answers yes on a T4 or V100, where bf16 is emulated and
    slower than float32; and it looks at the current device, not ``device``. ROCm builds
    report their own capability numbers, so there torch's answer (without emulation) stands.
    """
    if device.type != 'cuda':
        return False
    if getattr(torch.version, 'hip', None):
        check = torch.cuda.is_bf16_supported
        try:
            return bool(check(including_emulation=False))
        except TypeError:  # torch before 2.4
            return bool(check())
    return torch.cuda.get_device_capability(device)[0] >= 8


def use_ieee_float32_matmuls():
    """float32 matmuls in full float32, not TF32 (the float32 precision, and the known-answer checks).

    ``torch.set_float32_matmul_precision('highest')`` exists since torch 1.12 and, on torch ≥ 2.9,
    sets the legacy flag and the new ``fp32_precision`` one together. Assigning
    ``torch.backends.cuda.matmul.allow_tf32`` is deprecated from 2.9 on (a warning), and mixing
    the legacy and new settings makes every later matmul raise "you have used mix of the
    legacy and new APIs".
    """
    torch.set_float32_matmul_precision('highest')


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto`` is bf16 autocast on a GPU that supports it and float32 otherwise."""
    if requested == 'auto':
        return 'bf16' if supports_bf16(device) else 'float32'
    if requested == 'bf16' and not supports_bf16(device):
        raise ExecutorFailure('ERR_BAD_PRECISION', f'bf16 was requested but {device} does not support it; use --precision float32')
    if requested not in ('bf16', 'float32'):
        raise ExecutorFailure('ERR_BAD_PRECISION', f'precision "{requested}" is not auto, bf16 or float32')
    return requested


def fused_adamw_available(device: torch.device) -> bool:
    """torch ≥ 2.0 has a fused CUDA AdamW (one kernel for every tensor)."""
    return device.type == 'cuda' and 'fused' in inspect.signature(torch.optim.AdamW).parameters


def sdpa_available() -> bool:
    """torch ≥ 2.0 has scaled_dot_product_attention (flash / memory-efficient kernels on CUDA)."""
    return hasattr(F, 'scaled_dot_product_attention')


def features(device: torch.device):
    """What this torch can do on ``device``, for the hello frame and the logs."""
    return {
        'sdpa': sdpa_available(),
        'fusedAdamw': fused_adamw_available(device),
        'bf16': supports_bf16(device),
        'checkpointing': True,
    }


def describe_devices():
    """Every device this torch can train on: the CPU and each CUDA device with name and memory."""
    out = [{'name': 'cpu', 'kind': 'cpu', 'label': f'CPU ({os.cpu_count()} cores)', 'totalBytes': _host_total(), 'freeBytes': host_available()}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            free, total = _cuda_mem(i)
            out.append({'name': f'cuda:{i}', 'kind': 'cuda', 'label': props.name, 'totalBytes': total, 'freeBytes': free,
                        'capability': f'{props.major}.{props.minor}', 'bf16': supports_bf16(torch.device('cuda', i))})
    return out


def _cuda_mem(index):
    getter = getattr(torch.cuda, 'mem_get_info', None)
    if getter is not None:
        free, total = getter(index)
        return int(free), int(total)
    total = torch.cuda.get_device_properties(index).total_memory
    return int(total - torch.cuda.memory_reserved(index)), int(total)


def _meminfo(key):
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _host_total():
    total = _meminfo('MemTotal')
    if total is not None:
        return total
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def host_available():
    """Memory a new allocation can get without swapping (MemAvailable)."""
    available = _meminfo('MemAvailable')
    return available if available is not None else _host_total()


def free_bytes(device: torch.device, resident_bytes: int = 0) -> int:
    """Free memory on ``device``, counting what this process already holds for a model it would replace."""
    if device.type == 'cuda':
        free, _ = _cuda_mem(device.index or 0)
        return free + resident_bytes
    return host_available() + resident_bytes


def activation_bytes_per_token_layer(c: LlamaConfig, precision: str, fused_attention: bool) -> int:
    """Bytes autograd keeps for backward per token in each decoder layer, the T×T attention matrix aside.

    Counted from what the model saves (``torch.autograd.graph.saved_tensors_hooks``; the test
    ``test_estimate_covers_what_autograd_keeps`` measures it). Each RMSNorm keeps its float32
    input, the square and the normalized output (12d); the projections after it keep its
    weighted output: in float32 one tensor they share (4d a norm), under bf16 autocast each its
    own bf16 copy (q, k, v, gate, up: 10d in all). Attention keeps the rotated queries, the keys
    and values (already repeated to every query head under grouped-query attention, so of query
    width) and its output (4 × q_dim, 2 or 4 bytes each); the MLP keeps gate, silu(gate), up and
    their product. Fused attention adds its log-sum-exp (4 bytes a head).
    """
    d = c.hidden_size
    q_dim = c.num_attention_heads * c.head_dim
    inter = c.intermediate_size
    if precision == 'bf16':
        per_token_layer = 34 * d + 8 * q_dim + 8 * inter
    else:
        per_token_layer = 32 * d + 16 * q_dim + 16 * inter
    if fused_attention:
        per_token_layer += 4 * c.num_attention_heads
    return per_token_layer


def estimate_bytes(c: LlamaConfig, batch: int, seq_len: int, precision: str, checkpointing: bool, device: torch.device, optimizer_share=1.0):
    """Bytes one inner step needs: parameters, gradients, AdamW moments, activations and logits.

    A deliberately plain model (see the README): 16 bytes per parameter for fp32 weights,
    gradients and the two moments, plus 2 for bf16 weight copies under autocast and 4 for the
    optimizer's temporaries; activations counted per token and layer from the tensors autograd
    keeps; the T×T attention matrix only without fused attention; 20% headroom on activations.
    ``optimizer_share`` is the part of the parameters whose moments this device holds (a rank
    of a sharded optimizer).
    """
    p = count_params(c)
    static = p * (8 + (2 if precision == 'bf16' else 0)) + int(p * optimizer_share) * 12
    d = c.hidden_size
    tokens = batch * seq_len
    fused_attention = device.type == 'cuda' and sdpa_available()
    per_token_layer = activation_bytes_per_token_layer(c, precision, fused_attention)
    scores = 0 if fused_attention else batch * c.num_attention_heads * seq_len * seq_len * 12
    layer = tokens * per_token_layer + scores
    if checkpointing:
        activations = c.num_hidden_layers * tokens * d * 4 + layer
    else:
        activations = c.num_hidden_layers * layer
    logits = tokens * c.vocab_size * (12 if precision == 'float32' else 10)
    workspace = 512 * 1024 ** 2 if device.type == 'cuda' else 64 * 1024 ** 2
    return int(static + 1.2 * (activations + logits) + workspace), {
        'params': p, 'staticBytes': int(static), 'activationBytes': int(activations + logits)
    }


def format_count(n: int) -> str:
    """124M, 0.20M, 1.04B: parameter counts as people write them."""
    if n >= 1e9:
        return f'{n / 1e9:.2f}B'
    if n >= 1e7:
        return f'{n / 1e6:.0f}M'
    return f'{n / 1e6:.2f}M'


def plan_fit(c: LlamaConfig, batch, seq_len, precision, checkpointing, device, resident_bytes=0, limit_bytes=None, optimizer_share=1.0, sharers=1):
    """Decides whether a unit fits, turning on activation checkpointing when only that makes it fit.

    ``sharers`` ranks use the same memory (CPU ranks all use the host's): each plans with its
    share of what is free, ``limit_bytes`` included. Returns ``{'fits', 'checkpointing',
    'needBytes', 'freeBytes', 'reason'}``.
    """
    # Each sharing rank holds about what this one does, and all of it comes back when replaced.
    total = free_bytes(device, resident_bytes * sharers)
    if limit_bytes is not None:
        total = min(total, limit_bytes)
    free = total // sharers
    need, parts = estimate_bytes(c, batch, seq_len, precision, checkpointing, device, optimizer_share)
    if need <= free:
        return {'fits': True, 'checkpointing': checkpointing, 'needBytes': need, 'freeBytes': free, 'reason': ''}
    if not checkpointing:
        need_ckpt, _ = estimate_bytes(c, batch, seq_len, precision, True, device, optimizer_share)
        if need_ckpt <= free:
            return {'fits': True, 'checkpointing': True, 'needBytes': need_ckpt, 'freeBytes': free, 'reason': 'activation checkpointing turned on to fit'}
    where = 'GPU memory' if device.type == 'cuda' else 'host memory'
    moments = 'AdamW state' if optimizer_share >= 1 else "this rank's share of the AdamW state"
    reason = (f'the unit needs about {need / GIB:.1f} GiB ({format_count(parts["params"])} parameters: {parts["staticBytes"] / GIB:.1f} GiB of weights, '
              f'gradients and {moments}; {parts["activationBytes"] / GIB:.1f} GiB of activations for batch {batch} × seq {seq_len} in {precision}) '
              f'but {device} has {total / GIB:.1f} GiB of free {where}' + (f', {free / GIB:.1f} GiB for each of the {sharers} ranks that share it' if sharers > 1 else ''))
    return {'fits': False, 'checkpointing': checkpointing, 'needBytes': need, 'freeBytes': free, 'reason': reason}
