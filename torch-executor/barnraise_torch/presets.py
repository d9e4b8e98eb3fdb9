"""Named model sizes, the same as ``trainer/src/model/presets.ts`` (a Node test checks they agree).

All use the byte tokenizer's 256-token vocabulary so any of them trains on the demo corpus.
Run ``python3 -m barnraise_torch.presets`` to print them as JSON.
"""
import json
import sys

from .config import parse_config


def _byte_llama(**shape):
    return parse_config({'vocab_size': 256, 'rms_norm_eps': 1e-5, 'rope_theta': 10000, **shape})


PRESETS = {
    'tiny': _byte_llama(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True),
    'small': _byte_llama(hidden_size=64, intermediate_size=172, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True),
    'medium': _byte_llama(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024, tie_word_embeddings=True),
    'large': _byte_llama(hidden_size=1024, intermediate_size=2752, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=2048, tie_word_embeddings=False),
    # GPU-sized: about 124M, 346M and 1.04B parameters.
    '125m': _byte_llama(hidden_size=768, intermediate_size=2816, num_hidden_layers=14, num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=2048, tie_word_embeddings=False),
    '350m': _byte_llama(hidden_size=1024, intermediate_size=3328, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=2048, tie_word_embeddings=False),
    '1b': _byte_llama(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=2048, tie_word_embeddings=False),
}


def preset(name):
    """The config of preset ``name``; raises KeyError naming the known presets."""
    if name not in PRESETS:
        raise KeyError(f'unknown model preset "{name}"; known presets: {", ".join(PRESETS)}')
    return PRESETS[name]


if __name__ == '__main__':
    json.dump({name: c.to_json() for name, c in PRESETS.items()}, sys.stdout)
    sys.stdout.write('\n')
