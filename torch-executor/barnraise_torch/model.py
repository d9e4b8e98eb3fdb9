"""The Llama decoder as ``trainer/src/model/llama.ts`` (and Hugging Face's LlamaForCausalLM) computes it.

embedding → layers of [x += o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x))));
x += down(silu(gate(n2(x))) · up(n2(x)))] → final RMSNorm → head → mean cross-entropy.

Parameters carry the Hugging Face names (``model.layers.0.self_attn.q_proj.weight``, …) and are
registered in the checkpoint's order, so ``named_parameters()`` lines up with
``config.param_specs``. Weights are created uninitialised: they are always loaded from a file.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import LlamaConfig, param_specs

# torch ≥ 2.0 has a fused (flash / memory-efficient) attention kernel; 1.13 does not.
HAS_SDPA = hasattr(F, 'scaled_dot_product_attention')


class Weight(nn.Module):
    """A bias-free projection or embedding table: one ``weight`` parameter, so names match HF's."""

    def __init__(self, rows, cols, device):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, cols, device=device))

    def forward(self, x):
        return F.linear(x, self.weight)


class RMSNorm(nn.Module):
    """y = x · rsqrt(mean(x²) + eps) · w, computed in float32 whatever the input dtype (as HF does)."""

    def __init__(self, dim, eps, device):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, device=device))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rope_tables(seq_len, head_dim, theta, device):
    """cos and sin [seq_len, head_dim] for rotate_half rotary embeddings, computed in float64 like the TS trainer."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(torch.float32).to(device), angles.sin().to(torch.float32).to(device)


def rotate_half(x):
    """Element i pairs with element i + head_dim/2 (HF's convention, not interleaved neighbours)."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    """Causal grouped-query attention: query head h reads key/value head h // (heads / kv heads)."""

    def __init__(self, c: LlamaConfig, device):
        super().__init__()
        self.heads = c.num_attention_heads
        self.kv_heads = c.num_key_value_heads
        self.head_dim = c.head_dim
        self.q_proj = Weight(c.num_attention_heads * c.head_dim, c.hidden_size, device)
        self.k_proj = Weight(c.num_key_value_heads * c.head_dim, c.hidden_size, device)
        self.v_proj = Weight(c.num_key_value_heads * c.head_dim, c.hidden_size, device)
        self.o_proj = Weight(c.hidden_size, c.num_attention_heads * c.head_dim, device)
        self.use_sdpa = HAS_SDPA

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos = cos.to(q.dtype)
        sin = sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:
            group = self.heads // self.kv_heads
            k = k[:, :, None].expand(b, self.kv_heads, group, t, self.head_dim).reshape(b, self.heads, t, self.head_dim)
            v = v[:, :, None].expand(b, self.kv_heads, group, t, self.head_dim).reshape(b, self.heads, t, self.head_dim)
        if self.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.float().masked_fill(mask, float('-inf'))
            out = torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class MLP(nn.Module):
    """down(silu(gate(x)) · up(x))."""

    def __init__(self, c: LlamaConfig, device):
        super().__init__()
        self.gate_proj = Weight(c.intermediate_size, c.hidden_size, device)
        self.up_proj = Weight(c.intermediate_size, c.hidden_size, device)
        self.down_proj = Weight(c.hidden_size, c.intermediate_size, device)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm residual block; submodules registered in the checkpoint's tensor order."""

    def __init__(self, c: LlamaConfig, device):
        super().__init__()
        self.self_attn = Attention(c, device)
        self.mlp = MLP(c, device)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps, device)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps, device)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    """Embedding, decoder layers and the final norm (HF's ``model.`` prefix)."""

    def __init__(self, c: LlamaConfig, device):
        super().__init__()
        self.embed_tokens = Weight(c.vocab_size, c.hidden_size, device)
        self.layers = nn.ModuleList([DecoderLayer(c, device) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps, device)


class LlamaForCausalLM(nn.Module):
    """The whole model; ``loss(windows)`` is the training objective the TS trainer computes."""

    def __init__(self, c: LlamaConfig, device='cpu'):
        super().__init__()
        self.config = c
        self.model = LlamaModel(c, device)
        self.lm_head = None if c.tie_word_embeddings else Weight(c.vocab_size, c.hidden_size, device)
        self.checkpointing = False
        self._rope = {}

    def set_attention(self, use_sdpa: bool):
        """Chooses torch's fused attention (when it exists) or the explicit softmax."""
        for layer in self.model.layers:
            layer.self_attn.use_sdpa = use_sdpa and HAS_SDPA

    def _tables(self, t, device):
        key = (t, str(device))
        if key not in self._rope:
            self._rope = {key: rope_tables(t, self.config.head_dim, self.config.rope_theta, device)}
        return self._rope[key]

    def forward(self, input_ids):
        """Logits [B, T, vocab] for token ids [B, T]."""
        t = input_ids.shape[1]
        if t > self.config.max_position_embeddings:
            raise ValueError(f'seqLen {t} exceeds the model\'s max_position_embeddings ({self.config.max_position_embeddings})')
        cos, sin = self._tables(t, input_ids.device)
        x = F.embedding(input_ids, self.model.embed_tokens.weight)
        for layer in self.model.layers:
            if self.checkpointing and self.training and torch.is_grad_enabled():
                x = _checkpoint(layer, x, cos, sin)
            else:
                x = layer(x, cos, sin)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x, head)

    def loss(self, windows):
        """Mean next-token cross-entropy of windows [B, T+1]: reads [:, :T], predicts [:, 1:]."""
        logits = self(windows[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))

    def ordered_parameters(self):
        """Parameters in ``param_specs`` order, checked name by name."""
        named = dict(self.named_parameters())
        out = []
        for name, shape in param_specs(self.config):
            p = named.get(name)
            if p is None or tuple(p.shape) != tuple(shape):
                raise RuntimeError(f'model parameter {name} is missing or has the wrong shape')
            out.append((name, p))
        if len(out) != len(named):
            raise RuntimeError('model has parameters outside the checkpoint layout')
        return out


def _checkpoint(layer, x, cos, sin):
    import torch.utils.checkpoint as cp
    try:
        return cp.checkpoint(layer, x, cos, sin, use_reentrant=False)
    except TypeError:  # torch before 1.11 has no use_reentrant
        return cp.checkpoint(layer, x, cos, sin)
