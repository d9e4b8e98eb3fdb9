"""The Llama config, as ``protocol/src/llama-config.ts`` validates it (HF LlamaForCausalLM config.json)."""
from dataclasses import dataclass, asdict

from .errors import ExecutorFailure


@dataclass(frozen=True)
class LlamaConfig:
    """A validated config with every default filled in."""
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    tie_word_embeddings: bool
    max_position_embeddings: int

    def to_json(self):
        """The config as a plain dict (config.json keys)."""
        return asdict(self)


# Upper bounds on every dimension, as protocol/src/llama-config.ts LLAMA_LIMITS: a config comes
# from the coordinator, and a fit check or a model built from an unbounded one allocates until
# the OOM killer steps in. Far above any released Llama (405B: 126 layers, hidden 16384).
LIMITS = {
    'vocab_size': 2 ** 22,
    'hidden_size': 2 ** 17,
    'intermediate_size': 2 ** 17,
    'num_hidden_layers': 1024,
    'num_attention_heads': 1024,
    'num_key_value_heads': 1024,
    'head_dim': 1024,
    'max_position_embeddings': 2 ** 20,
}


def _bad(field, message):
    return ExecutorFailure('ERR_INVALID_CONFIG', f'invalid Llama config: {field}: {message}')


def _positive_int(raw, key, default=None):
    value = raw.get(key, default)
    if value is None:
        raise _bad(key, 'is required')
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value <= 0:
        raise _bad(key, 'must be a positive integer')
    if value > LIMITS[key]:
        raise _bad(key, f'must be at most {LIMITS[key]}')
    return int(value)


def _positive_float(raw, key, default):
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float('inf'):
        raise _bad(key, 'must be a positive finite number')
    return float(value)


def parse_config(raw) -> LlamaConfig:
    """Validates a config.json dict with Hugging Face's defaults; refuses what the trainer does not implement."""
    if not isinstance(raw, dict):
        raise _bad('(config)', 'expected a JSON object (the contents of config.json)')
    if raw.get('hidden_act', 'silu') != 'silu':
        raise _bad('hidden_act', 'must be "silu" (SwiGLU); other activations are not implemented')
    for key in ('attention_bias', 'mlp_bias'):
        if raw.get(key, False) is not False:
            raise _bad(key, 'must be false; biased projections are not implemented')
    if raw.get('rope_scaling') is not None:
        raise _bad('rope_scaling', 'must be null; scaled rotary embeddings are not implemented')
    heads = _positive_int(raw, 'num_attention_heads')
    kv = _positive_int(raw, 'num_key_value_heads', heads)
    hidden = _positive_int(raw, 'hidden_size')
    if heads % kv != 0:
        raise _bad('num_key_value_heads', f'num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv})')
    if raw.get('head_dim') is None and hidden % heads != 0:
        raise _bad('hidden_size', f'hidden_size ({hidden}) must be a multiple of num_attention_heads ({heads}), or set head_dim')
    head_dim = _positive_int(raw, 'head_dim', hidden // heads)
    if head_dim % 2 != 0:
        raise _bad('head_dim', f'head_dim ({head_dim}) must be even: rotary embeddings rotate pairs')
    tie = raw.get('tie_word_embeddings', False)
    if not isinstance(tie, bool):
        raise _bad('tie_word_embeddings', 'must be true or false')
    return LlamaConfig(
        vocab_size=_positive_int(raw, 'vocab_size'),
        hidden_size=hidden,
        intermediate_size=_positive_int(raw, 'intermediate_size'),
        num_hidden_layers=_positive_int(raw, 'num_hidden_layers'),
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        rms_norm_eps=_positive_float(raw, 'rms_norm_eps', 1e-6),
        rope_theta=_positive_float(raw, 'rope_theta', 10000.0),
        tie_word_embeddings=tie,
        max_position_embeddings=_positive_int(raw, 'max_position_embeddings', 2048),
    )


def param_specs(c: LlamaConfig):
    """Every weight's HF name and shape in the checkpoint's (PyTorch named_parameters) order; lm_head only when untied."""
    d = c.hidden_size
    q_dim = c.num_attention_heads * c.head_dim
    kv_dim = c.num_key_value_heads * c.head_dim
    inter = c.intermediate_size
    specs = [('model.embed_tokens.weight', (c.vocab_size, d))]
    for layer in range(c.num_hidden_layers):
        p = f'model.layers.{layer}.'
        specs += [
            (p + 'self_attn.q_proj.weight', (q_dim, d)),
            (p + 'self_attn.k_proj.weight', (kv_dim, d)),
            (p + 'self_attn.v_proj.weight', (kv_dim, d)),
            (p + 'self_attn.o_proj.weight', (d, q_dim)),
            (p + 'mlp.gate_proj.weight', (inter, d)),
            (p + 'mlp.up_proj.weight', (inter, d)),
            (p + 'mlp.down_proj.weight', (d, inter)),
            (p + 'input_layernorm.weight', (d,)),
            (p + 'post_attention_layernorm.weight', (d,)),
        ]
    specs.append(('model.norm.weight', (d,)))
    if not c.tie_word_embeddings:
        specs.append(('lm_head.weight', (c.vocab_size, d)))
    return specs


def count_params(c: LlamaConfig) -> int:
    """Total number of weights (tied embeddings counted once), in closed form: param_specs' sum without its list."""
    d = c.hidden_size
    q_dim = c.num_attention_heads * c.head_dim
    kv_dim = c.num_key_value_heads * c.head_dim
    per_layer = 2 * q_dim * d + 2 * kv_dim * d + 3 * c.intermediate_size * d + 2 * d
    embeddings = c.vocab_size * d * (1 if c.tie_word_embeddings else 2)
    return c.num_hidden_layers * per_layer + embeddings + d
