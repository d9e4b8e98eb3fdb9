"""Barnraise's PyTorch executor: the DiLoCo inner loop of a Llama model on CPU or CUDA.

Only the standard library, torch and numpy are used. Modules:

- ``safetensors``: the file format tensors travel in (our own reader and writer).
- ``config``, ``presets``: the Llama config, mirroring ``protocol/src/llama-config.ts`` and
  ``trainer/src/model/presets.ts``.
- ``model``: the Llama decoder with Hugging Face weight names, as ``trainer/src/model`` computes it.
- ``optim``: the inner learning-rate schedule and the AdamW state file.
- ``device``: device choice, feature detection and the memory fit estimate.
- ``inner_loop``: the resident trainer (model and optimizer kept across rounds).
- ``server``: the long-lived child process the agent drives over length-prefixed JSON frames.
- ``selftest``, ``bench``: command-line tools that run without Node.
"""

PROTOCOL_VERSION = 1
