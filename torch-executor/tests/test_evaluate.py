"""Held-out losses (evaluate.py): the training objective's number, chunked or not, and refusals."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch

from barnraise_torch import evaluate
from barnraise_torch.config import parse_config
from barnraise_torch.errors import ExecutorFailure
from barnraise_torch.model import LlamaForCausalLM
from barnraise_torch.safetensors import write_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = {'vocab_size': 40, 'hidden_size': 16, 'intermediate_size': 24, 'num_hidden_layers': 2, 'num_attention_heads': 4,
          'num_key_value_heads': 2, 'max_position_embeddings': 32, 'tie_word_embeddings': False}
CPU = torch.device('cpu')


class EvaluateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = parse_config(CONFIG)
        torch.manual_seed(3)
        self.model = LlamaForCausalLM(self.config, CPU)
        rng = np.random.default_rng(5)
        with torch.no_grad():
            for _, p in self.model.ordered_parameters():
                p.copy_(torch.from_numpy(rng.normal(0, 0.2, size=tuple(p.shape)).astype(np.float32)))
        self.weights = {name: p.detach().numpy().copy() for name, p in self.model.ordered_parameters()}
        self.delta = {name: rng.normal(0, 0.05, size=a.shape).astype(np.float32) for name, a in self.weights.items()}
        self.tokens = rng.integers(0, CONFIG['vocab_size'], size=(3, 4, 9)).astype(np.int32)
        self.weights_path = self.path('w.safetensors', self.weights)
        self.delta_path = self.path('d.safetensors', self.delta)
        self.windows_path = self.path('t.safetensors', {'tokens': self.tokens})

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name, tensors):
        p = os.path.join(self.dir.name, name)
        write_file(p, tensors)
        return p

    def expected(self, scale):
        """The training objective's loss (model.loss) on each batch, averaged: what the TypeScript lossOverBatches computes."""
        with torch.no_grad():
            for name, p in self.model.ordered_parameters():
                p.copy_(torch.from_numpy(self.weights[name] + scale * self.delta[name]))
            return sum(float(self.model.loss(torch.from_numpy(b).long())) for b in self.tokens) / len(self.tokens)

    def test_losses_are_the_training_objective_at_each_scale(self):
        out = evaluate.held_out_losses(self.config, self.weights_path, self.windows_path, CPU, self.delta_path, [0, -1, 1])
        self.assertEqual((out['batches'], out['batchSize'], out['seqLen']), (3, 4, 8))
        for got, scale in zip(out['losses'], [0, -1, 1]):
            self.assertAlmostEqual(got, self.expected(scale), delta=1e-5 * abs(got))
        self.assertNotEqual(out['losses'][1], out['losses'][2])

    def test_rows_in_several_passes_give_the_same_loss(self):
        whole = evaluate.held_out_losses(self.config, self.weights_path, self.windows_path, CPU)['losses'][0]
        with mock.patch.object(evaluate, 'ROWS_PER_PASS_BYTES', 1):
            chunked = evaluate.held_out_losses(self.config, self.weights_path, self.windows_path, CPU)['losses'][0]
        self.assertAlmostEqual(whole, chunked, delta=1e-6 * whole)

    def test_a_diverged_model_has_no_loss(self):
        bad = dict(self.weights)
        bad['model.norm.weight'] = np.full_like(bad['model.norm.weight'], np.inf)
        out = evaluate.held_out_losses(self.config, self.path('bad.safetensors', bad), self.windows_path, CPU)
        self.assertEqual(out['losses'], [None])

    def test_hostile_inputs_are_refused_with_a_code(self):
        past = self.tokens.copy()
        past[0, 0, 0] = CONFIG['vocab_size']
        missing = {k: v for k, v in self.weights.items() if k != 'lm_head.weight'}
        cases = [
            (self.weights_path, self.path('past.safetensors', {'tokens': past}), None, [0], 'token ids must lie'),
            (self.weights_path, self.path('flat.safetensors', {'tokens': self.tokens.reshape(-1)}), None, [0], 'needs integer "tokens"'),
            (self.weights_path, self.path('float.safetensors', {'tokens': self.tokens.astype(np.float32)}), None, [0], 'needs integer "tokens"'),
            (self.path('missing.safetensors', missing), self.windows_path, None, [0], 'lm_head.weight is missing'),
            (self.weights_path, self.windows_path, None, [1], 'needs a delta file'),
            (self.weights_path, self.windows_path, self.delta_path, [float('nan')], 'finite'),
            (self.weights_path, self.windows_path, self.delta_path, [], '1 to 16'),
            (os.path.join(self.dir.name, 'absent'), self.windows_path, None, [0], 'absent'),
        ]
        for weights, windows, delta, scales, says in cases:
            with self.subTest(says=says):
                with self.assertRaises(ExecutorFailure) as caught:
                    evaluate.held_out_losses(self.config, weights, windows, CPU, delta, scales)
                self.assertEqual(caught.exception.code, 'ERR_BAD_INPUT')
                self.assertIn(says, caught.exception.message)

    def test_the_cli_prints_one_json_line(self):
        config_path = os.path.join(self.dir.name, 'config.json')
        with open(config_path, 'w') as f:
            json.dump(CONFIG, f)
        env = {**os.environ, 'PYTHONPATH': ROOT, 'PYTHONDONTWRITEBYTECODE': '1'}
        run = subprocess.run([sys.executable, '-m', 'barnraise_torch.evaluate', '--config', config_path, '--weights', self.weights_path,
                              '--windows', self.windows_path, '--delta', self.delta_path, '--scales', '0,1', '--device', 'cpu', '--threads', '1'],
                             capture_output=True, env=env, cwd=ROOT, timeout=120, check=False)
        self.assertEqual(run.returncode, 0, run.stderr.decode())
        out = json.loads(run.stdout)
        self.assertAlmostEqual(out['losses'][1], self.expected(1), delta=1e-5 * out['losses'][1])
        bad = subprocess.run([sys.executable, '-m', 'barnraise_torch.evaluate', '--config', config_path, '--weights', self.weights_path,
                              '--windows', self.windows_path, '--scales', 'x', '--device', 'cpu'],
                             capture_output=True, env=env, cwd=ROOT, timeout=120, check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertEqual(json.loads(bad.stdout)['error']['code'], 'ERR_BAD_INPUT')


if __name__ == '__main__':
    unittest.main()
