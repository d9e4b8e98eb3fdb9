"""Schedule, parameter layout, optimizer state files and the inner loop's skip rule."""
import math
import os
import tempfile
import unittest

import numpy as np
import torch

from barnraise_torch.config import count_params, param_specs, parse_config
from barnraise_torch.errors import ExecutorFailure
from barnraise_torch.golden import GOLDEN_DIR, check_golden_file
from barnraise_torch.model import LlamaForCausalLM
from barnraise_torch.optim import export_state, import_state, learning_rate_at, make_adamw, read_state_file, write_state_file
from barnraise_torch.presets import PRESETS


class ScheduleTest(unittest.TestCase):
    def test_matches_the_typescript_schedule(self):
        # Values of learningRateAt from trainer/src/optim/schedule.ts for peak 1e-3, warmup 4, total 20, min 1e-4.
        self.assertEqual(learning_rate_at(0, 1e-3, 4, 20, 1e-4), 1e-3 * 1 / 4)
        self.assertEqual(learning_rate_at(3, 1e-3, 4, 20, 1e-4), 1e-3)
        self.assertAlmostEqual(learning_rate_at(12, 1e-3, 4, 20, 1e-4), 1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * 0.5)), places=15)
        self.assertEqual(learning_rate_at(20, 1e-3, 4, 20, 1e-4), 1e-4)
        self.assertEqual(learning_rate_at(500, 1e-3, 4, 20, 1e-4), 1e-4)


class LayoutTest(unittest.TestCase):
    def test_named_parameters_follow_the_checkpoint_order(self):
        for name in ('tiny', 'large'):
            c = PRESETS[name]
            # The meta device allocates nothing, so the 186M-parameter layout costs no memory.
            model = LlamaForCausalLM(c, 'meta' if _meta_ok() else 'cpu')
            self.assertEqual([n for n, _ in model.named_parameters()], [n for n, _ in param_specs(c)])
            self.assertEqual(sum(p.numel() for p in model.parameters()), count_params(c))

    def test_config_defaults_and_refusals_match_the_protocol(self):
        c = parse_config({'vocab_size': 10, 'hidden_size': 8, 'intermediate_size': 16, 'num_hidden_layers': 1, 'num_attention_heads': 2})
        self.assertEqual((c.num_key_value_heads, c.head_dim, c.rms_norm_eps, c.tie_word_embeddings, c.max_position_embeddings), (2, 4, 1e-6, False, 2048))
        for bad in ({'hidden_act': 'gelu'}, {'num_key_value_heads': 3}, {'rope_scaling': {'type': 'linear'}}):
            with self.assertRaises(ExecutorFailure):
                parse_config({'vocab_size': 10, 'hidden_size': 8, 'intermediate_size': 16, 'num_hidden_layers': 1, 'num_attention_heads': 2, **bad})

    def test_config_dimensions_are_bounded_as_the_protocol_bounds_them(self):
        small = {'vocab_size': 10, 'hidden_size': 8, 'intermediate_size': 16, 'num_hidden_layers': 1, 'num_attention_heads': 2}
        cases = [('num_hidden_layers', 10 ** 9), ('hidden_size', 2 ** 17 + 2), ('intermediate_size', 2 ** 40), ('vocab_size', 2 ** 22 + 1),
                 ('num_attention_heads', 2048), ('num_key_value_heads', 1025), ('head_dim', 2048), ('max_position_embeddings', 2 ** 20 + 1)]
        for key, value in cases:
            with self.assertRaises(ExecutorFailure) as caught:
                parse_config({**small, key: value})
            self.assertEqual(caught.exception.code, 'ERR_INVALID_CONFIG')
            self.assertIn(f'{key}: must be at most', caught.exception.message)
        # A head_dim derived from hidden_size / heads is bounded too.
        with self.assertRaises(ExecutorFailure):
            parse_config({**small, 'hidden_size': 4096, 'num_attention_heads': 2})
        self.assertEqual(parse_config({**small, 'num_hidden_layers': 1024}).num_hidden_layers, 1024)

    def test_count_params_is_the_layouts_sum_in_closed_form(self):
        configs = list(PRESETS.values()) + [parse_config({'vocab_size': 19, 'hidden_size': 12, 'intermediate_size': 20, 'num_hidden_layers': 3,
                                                          'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 6, 'tie_word_embeddings': t})
                                            for t in (False, True)]
        for c in configs:
            self.assertEqual(count_params(c), sum(math.prod(shape) for _, shape in param_specs(c)))
        # The largest config the bounds allow is counted at once (the per-layer list took minutes and gigabytes).
        huge = parse_config({'vocab_size': 2 ** 22, 'hidden_size': 2 ** 17, 'intermediate_size': 2 ** 17, 'num_hidden_layers': 1024,
                             'num_attention_heads': 1024, 'head_dim': 1024, 'max_position_embeddings': 2 ** 20})
        d, q = 2 ** 17, 1024 * 1024
        self.assertEqual(count_params(huge), 1024 * (4 * q * d + 3 * d * d + 2 * d) + 2 * 2 ** 22 * d + d)


def _meta_ok():
    try:
        torch.empty(1, device='meta')
        return True
    except (RuntimeError, TypeError):
        return False


class OptimizerStateTest(unittest.TestCase):
    def test_state_survives_a_file_round_trip_and_continues_identically(self):
        torch.manual_seed(0)
        a = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
        b = [torch.nn.Parameter(p.detach().clone()) for p in a]
        opt_a, _ = make_adamw(a, 1e-2, (0.9, 0.95), 0.1, torch.device('cpu'))
        for _ in range(3):
            for p in a:
                p.grad = torch.ones_like(p) * 0.5
            opt_a.step()
        path = os.path.join(tempfile.mkdtemp(), 'state', 'inner-adamw.safetensors')
        write_state_file(path, *export_state(opt_a, [('a', a[0]), ('b', a[1])]))
        step, m, v = read_state_file(path, 17)
        self.assertEqual(step, 3)
        self.assertIsNone(read_state_file(path, 18), 'state of another model size is ignored')
        with torch.no_grad():
            for pa, pb in zip(a, b):
                pb.copy_(pa)
        opt_b, _ = make_adamw(b, 1e-2, (0.9, 0.95), 0.1, torch.device('cpu'))
        import_state(opt_b, [('a', b[0]), ('b', b[1])], step, m, v)
        for opt, ps in ((opt_a, a), (opt_b, b)):
            for p in ps:
                p.grad = torch.full_like(p, -0.25)
            opt.step()
        for pa, pb in zip(a, b):
            self.assertTrue(torch.equal(pa, pb))


class GoldenTest(unittest.TestCase):
    def test_every_shipped_golden_file_passes_on_cpu(self):
        for name in ('llama-tiny-gqa', 'llama-tiny-tied', 'adamw', 'nesterov-outer'):
            rows = check_golden_file(os.path.join(GOLDEN_DIR, f'{name}.safetensors'))
            for row in rows:
                self.assertLessEqual(row['value'], row['threshold'], f"{name}: {row['name']}")


if __name__ == '__main__':
    unittest.main()
