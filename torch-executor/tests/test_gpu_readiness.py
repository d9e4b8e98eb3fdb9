"""The parts of the GPU path that can be checked on a CPU (from the GPU readiness review).

- bf16 is chosen by compute capability, not by ``torch.cuda.is_bf16_supported()`` (which says
  yes on a T4 since torch 2.4, where bf16 is emulated);
- float32 matmuls are made exact through ``set_float32_matmul_precision``, the one switch that
  torch 1.13 and torch ≥ 2.9 both take without mixing legacy and new TF32 settings;
- the fit estimate covers what autograd really keeps per token and layer;
- an out-of-memory error mid-round lets go of the round's tensors before the cache is emptied,
  so the retry with checkpointing finds the memory free;
- the bench's pieces (peak table, base weights, the bare loop) and the checkpoint checker's
  transformers path (with a stand-in transformers module).
"""
import contextlib
import gc
import importlib.util
import io
import json
import os
import sys
import tempfile
import types
import unittest
import weakref
from unittest import mock

import numpy as np
import torch

from barnraise_torch import bench
from barnraise_torch import device as device_module
from barnraise_torch.config import param_specs, parse_config
from barnraise_torch.device import activation_bytes_per_token_layer, supports_bf16, use_ieee_float32_matmuls
from barnraise_torch.errors import ExecutorFailure
from barnraise_torch.inner_loop import ResidentTrainer
from barnraise_torch.model import LlamaForCausalLM
from barnraise_torch.presets import PRESETS
from barnraise_torch.safetensors import write_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HF_CHECK = os.path.join(ROOT, '..', 'scripts', 'gpu-check', 'hf_load_check.py')


class DeviceFeaturesTest(unittest.TestCase):
    def test_bf16_needs_compute_capability_8_whatever_is_bf16_supported_says(self):
        cuda0 = torch.device('cuda', 0)
        with mock.patch.object(device_module.torch.version, 'hip', None, create=True), \
                mock.patch.object(device_module.torch.cuda, 'is_bf16_supported', return_value=True, create=True):
            for capability, expected in (((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)):
                with mock.patch.object(device_module.torch.cuda, 'get_device_capability', return_value=capability) as asked:
                    self.assertEqual(supports_bf16(cuda0), expected, capability)
                    asked.assert_called_with(cuda0)
        self.assertFalse(supports_bf16(torch.device('cpu')))

    def test_float32_matmuls_are_made_exact_with_the_switch_every_torch_has(self):
        before = torch.get_float32_matmul_precision()
        try:
            torch.set_float32_matmul_precision('high')
            use_ieee_float32_matmuls()
            self.assertEqual(torch.get_float32_matmul_precision(), 'highest')
        finally:
            torch.set_float32_matmul_precision(before)


def _storage(x):
    st = x.untyped_storage() if hasattr(x, 'untyped_storage') else x.storage()
    nbytes = st.nbytes() if hasattr(st, 'nbytes') else st.size() * x.element_size()
    return st.data_ptr(), nbytes


def _saved_bytes(config, batch, seq_len, precision):
    """Bytes autograd keeps for backward over one forward, without weights (and their bf16 copies) and T×T tensors."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(config, 'cpu')
    with torch.no_grad():
        for _, p in model.ordered_parameters():
            p.copy_(torch.randn(p.shape) * 0.02 if p.dim() > 1 else torch.ones(p.shape))
    weights = {p.data_ptr() for p in model.parameters()}
    weight_shapes = {tuple(p.shape) for p in model.parameters()} | {tuple(reversed(p.shape)) for p in model.parameters()}
    seen = {}

    def pack(x):
        key, nbytes = _storage(x)
        if key in weights or x.dim() == 0 or tuple(x.shape) in weight_shapes:
            return x
        if x.dim() >= 2 and x.shape[-1] == seq_len and x.shape[-2] == seq_len:
            return x  # the explicit attention's T×T tensors, which fused attention does not keep
        seen[key] = nbytes
        return x

    ids = torch.randint(0, config.vocab_size, (batch, seq_len + 1))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        with torch.autocast('cpu', dtype=torch.bfloat16) if precision == 'bf16' else contextlib.nullcontext():
            model.loss(ids)
    return sum(seen.values())


class FitEstimateTest(unittest.TestCase):
    def test_estimate_covers_what_autograd_keeps(self):
        # The 1B preset's proportions (grouped-query) and the 125M preset's (multi-head), small.
        shapes = [dict(hidden_size=256, intermediate_size=704, num_attention_heads=4, num_key_value_heads=2),
                  dict(hidden_size=192, intermediate_size=704, num_attention_heads=3, num_key_value_heads=3)]
        batch, seq_len = 1, 40  # seq_len differs from head_dim (64), so only the T×T tensors are left out
        for shape in shapes:
            for precision in ('float32', 'bf16'):
                configs = [parse_config({'vocab_size': 256, 'max_position_embeddings': 64, 'num_hidden_layers': n, **shape}) for n in (1, 2)]
                # One more layer's worth: the embedding, final norm and head cancel out.
                measured = (_saved_bytes(configs[1], batch, seq_len, precision) - _saved_bytes(configs[0], batch, seq_len, precision)) / (batch * seq_len)
                estimate = activation_bytes_per_token_layer(configs[0], precision, fused_attention=False)
                with self.subTest(shape=shape, precision=precision, measured=measured, estimate=estimate):
                    # Under 3% over (bf16 copies of the rotary tables, a few hundred bytes) is
                    # what the 20% headroom is for; far under would waste GPUs.
                    self.assertLessEqual(measured, estimate * 1.03)
                    self.assertGreaterEqual(measured, estimate * 0.75)

    def test_the_1b_preset_fits_an_80_gb_h100_without_checkpointing_and_a_40_gb_card_with_it(self):
        cuda = types.SimpleNamespace(type='cuda', index=0)
        with mock.patch.object(device_module, 'sdpa_available', return_value=True):
            need, _ = device_module.estimate_bytes(PRESETS['1b'], 8, 2048, 'bf16', False, cuda)
            need_ckpt, _ = device_module.estimate_bytes(PRESETS['1b'], 8, 2048, 'bf16', True, cuda)
        gib = device_module.GIB
        # An H100's 79.1 GiB less two CUDA contexts (the bench's and the child's) is about 78 GiB free.
        self.assertLess(need, 78 * gib)
        self.assertGreater(need, 40 * gib)
        self.assertLess(need_ckpt, 38 * gib)


TINY = {'vocab_size': 16, 'hidden_size': 8, 'intermediate_size': 16, 'num_hidden_layers': 1, 'num_attention_heads': 2, 'max_position_embeddings': 64}
RECIPE = {'innerSteps': 2, 'batchSize': 2, 'seqLen': 4, 'lr': 1e-3, 'warmupSteps': 0, 'weightDecay': 0.0, 'beta1': 0.9, 'beta2': 0.95, 'gradClip': 1.0}


class OutOfMemoryTest(unittest.TestCase):
    def test_an_out_of_memory_error_lets_go_of_the_rounds_tensors(self):
        folder = tempfile.mkdtemp()
        config = parse_config(TINY)
        base = os.path.join(folder, 'base.safetensors')
        batches = os.path.join(folder, 'batches.safetensors')
        write_file(base, {name: np.full(shape, 0.01, np.float32) for name, shape in param_specs(config)})
        write_file(batches, {'tokens': np.arange(2 * 2 * 5, dtype=np.int32).reshape(2, 2, 5) % 16})
        req = {'config': TINY, 'recipe': RECIPE, 'stateDir': os.path.join(folder, 'state'), 'outFile': os.path.join(folder, 'out.safetensors'),
               'baseFile': base, 'batchesFile': batches, 'scheduleOffset': 0, 'totalInnerSteps': 10}
        trainer = ResidentTrainer(torch.device('cpu'))
        held = []

        def step(model, *args, **kwargs):
            activations = torch.ones(1000)  # stands for the round's activations on the GPU
            held.append((weakref.ref(activations), weakref.ref(model)))
            raise RuntimeError('CUDA out of memory. Tried to allocate 20.00 GiB')

        trainer._step = step
        gc.collect()
        gc.disable()  # only reference counting: what empty_cache() right after the error would see
        try:
            with self.assertRaises(ExecutorFailure) as caught:
                trainer.train(req, None, lambda: False)
            self.assertEqual(caught.exception.code, 'ERR_OUT_OF_MEMORY')
            self.assertIn('pass --max-memory to leave headroom', str(caught.exception), 'on the CPU the host flag is the one to change')
            activations, model = held[0]
            self.assertIsNone(activations(), 'the failed step\'s tensors are still referenced by the traceback')
            self.assertIsNone(model(), 'the dropped model is still referenced by the traceback')
            self.assertIsNone(trainer.model)
        finally:
            gc.enable()


class BenchTest(unittest.TestCase):
    def test_peaks_match_the_most_specific_gpu_name(self):
        self.assertEqual(bench._peak_for('NVIDIA H100 80GB HBM3'), 989.0)
        self.assertEqual(bench._peak_for('NVIDIA H100 PCIe'), 756.0)
        self.assertEqual(bench._peak_for('NVIDIA H100 NVL'), 835.0)
        self.assertEqual(bench._peak_for('NVIDIA H200'), 989.0)
        self.assertEqual(bench._peak_for('NVIDIA A100-SXM4-80GB'), 312.0)
        self.assertIsNone(bench._peak_for('Tesla T4'))

    def test_random_base_has_the_layout_and_a_standard_deviation_of_0_02(self):
        config = PRESETS['small']
        base = bench.random_base(config)
        self.assertEqual([(n, a.shape) for n, a in base.items()], [(n, tuple(s)) for n, s in param_specs(config)])
        matrix = base['model.layers.0.mlp.up_proj.weight']
        self.assertEqual(matrix.dtype, np.float32)
        self.assertAlmostEqual(float(matrix.std()), 0.02, delta=0.002)
        np.testing.assert_array_equal(base['model.norm.weight'], np.ones(config.hidden_size, np.float32))

    def test_the_bare_loop_runs_and_reports_no_gpu_peak_on_a_cpu(self):
        tokens_per_second, peak = bench.bare_loop(PRESETS['tiny'], 2, 8, 1, 1, torch.device('cpu'), 'float32', 0)
        self.assertGreater(tokens_per_second, 0)
        self.assertIsNone(peak)


def _load_hf_check():
    spec = importlib.util.spec_from_file_location('hf_load_check', HF_CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_transformers(dtype_override=None, logit_noise=0.0):
    """A stand-in for transformers: barnraise_torch's model behind from_pretrained, the byte tokenizer."""
    check = _load_hf_check()

    class Model(torch.nn.Module):
        def __init__(self, folder, dtype):
            super().__init__()
            with open(os.path.join(folder, 'config.json')) as f:
                raw = json.load(f)
            self.config = types.SimpleNamespace(tie_word_embeddings=raw.get('tie_word_embeddings', False), _attn_implementation='sdpa')
            self.folder = folder
            self.weight = torch.nn.Parameter(torch.zeros(1, dtype=dtype))

        def get_output_embeddings(self):
            return None

        def get_input_embeddings(self):
            return None

        def forward(self, input_ids, use_cache=None):
            logits, _ = check.logits_barnraise(self.folder, input_ids.tolist(), str(input_ids.device))
            return types.SimpleNamespace(logits=logits * (1 + logit_noise))

    class AutoModelForCausalLM:
        @staticmethod
        def from_pretrained(folder, dtype=None, output_loading_info=False):
            model = Model(folder, dtype_override or dtype)
            return (model, {'missing_keys': [], 'unexpected_keys': [], 'mismatched_keys': []}) if output_loading_info else model

    class ByteTokenizer:
        def __call__(self, text):
            return {'input_ids': list(text.encode('utf-8'))}

        def decode(self, ids, skip_special_tokens=False):
            return bytes(ids).decode('utf-8')

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(folder):
            return ByteTokenizer()

    return types.SimpleNamespace(__version__='stand-in', AutoModelForCausalLM=AutoModelForCausalLM, AutoTokenizer=AutoTokenizer)


class HfLoadCheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A folder as prepare.ts writes one: config.json, model.safetensors, expected.json.
        cls.root = tempfile.mkdtemp()
        config = PRESETS['tiny']
        rng = np.random.default_rng(3)
        weights = {name: (np.ones(shape, np.float32) if len(shape) == 1 else rng.standard_normal(shape).astype(np.float32) * 0.05) for name, shape in param_specs(config)}
        inputs = [[(i * 97 + 13 + r) % 256 for i in range(12)] for r in range(2)]
        model = LlamaForCausalLM(config, 'cpu')
        with torch.no_grad():
            for name, p in model.ordered_parameters():
                p.copy_(torch.from_numpy(weights[name]))
            logits = model(torch.tensor(inputs)).double()
        for dtype in ('F32', 'BF16'):
            folder = os.path.join(cls.root, f'tiny-{dtype.lower()}')
            os.makedirs(folder)
            with open(os.path.join(folder, 'config.json'), 'w') as f:
                json.dump({**config.to_json(), 'model_type': 'llama', 'torch_dtype': 'float32'}, f)
            write_file(os.path.join(folder, 'model.safetensors'), weights, {'format': 'pt'})
            with open(os.path.join(folder, 'expected.json'), 'w') as f:
                json.dump({'dtype': dtype, 'inputs': inputs, 'vocab': config.vocab_size, 'logits': logits.reshape(-1).tolist()}, f)

    def run_check(self, fake):
        out = io.StringIO()
        with mock.patch.dict(sys.modules, {'transformers': fake}), contextlib.redirect_stdout(out):
            code = _load_hf_check().main([self.root, '--device', 'cpu'])
        return code, out.getvalue()

    def test_a_faithful_loader_passes_both_comparisons(self):
        code, out = self.run_check(_fake_transformers())
        self.assertEqual(code, 0, out)
        self.assertIn('transformers stand-in', out)
        self.assertRegex(out, r'tiny-f32: ok, logits relative error .* against barnraise_torch on the same weights 0\.00e\+00 \(limit 0\.0001\)')
        self.assertIn('2 of 2 folders load and match (transformers)', out)
        self.assertTrue(out.rstrip().endswith('hf-check: PASS'), out)

    def test_a_model_loaded_in_bf16_fails_instead_of_hiding_under_the_bf16_bar(self):
        code, out = self.run_check(_fake_transformers(dtype_override=torch.bfloat16))
        self.assertEqual(code, 1)
        self.assertIn('tiny-bf16: FAILED: AssertionError: from_pretrained(dtype=torch.float32) gave parameters in torch.bfloat16', out)
        self.assertTrue(out.rstrip().endswith('hf-check: FAIL'), out)

    def test_logits_within_the_bf16_bar_but_off_on_the_same_weights_fail(self):
        # 1e-3 off: inside the 2e-2 allowed for rounded weights, far outside float32 agreement.
        code, out = self.run_check(_fake_transformers(logit_noise=1e-3))
        self.assertEqual(code, 1)
        self.assertRegex(out, r'tiny-bf16: FAILED, logits relative error 1\.00e-03 \(limit 0\.02, weights rounded to bf16\); against barnraise_torch on the same weights 1\.00e-03 \(limit 0\.0001\) FAILED')
        self.assertIn('0 of 2 folders load and match', out)

    def test_without_transformers_the_check_says_so(self):
        out = io.StringIO()
        with mock.patch.dict(sys.modules, {'transformers': None}), contextlib.redirect_stdout(out):
            code = _load_hf_check().main([self.root, '--device', 'cpu'])
        self.assertEqual(code, 1)
        self.assertIn('hf-check: FAIL: transformers is not importable', out.getvalue())


if __name__ == '__main__':
    unittest.main()
