"""Inputs the child must refuse with a coded error instead of dying, hanging or leaking disk.

From the hostile-input review of the torch path: deeply nested frames and headers, shapes past
numpy's index range, a write that fails half way, a recipe AdamW refuses, and a unit's batches
that must reach the device one step at a time.
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from barnraise_torch.errors import ExecutorFailure
from barnraise_torch.frames import FrameError, read_frame
from barnraise_torch.inner_loop import ResidentTrainer
from barnraise_torch.safetensors import SafetensorsError, read_file, sweep_temp_files, write_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NESTED = b'[' * 100_000 + b']' * 100_000


def frame(body: bytes) -> bytes:
    return struct.pack('>I', len(body)) + body


def server_frames(test: unittest.TestCase, stdin: bytes) -> tuple:
    """Runs the child server on the CPU with `stdin` as its whole input; returns every frame it wrote and its exit code."""
    env = {**os.environ, 'PYTHONPATH': ROOT, 'PYTHONDONTWRITEBYTECODE': '1'}
    proc = subprocess.Popen([sys.executable, '-m', 'barnraise_torch.server', '--device', 'cpu', '--threads', '1'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        out, _ = proc.communicate(stdin, timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        test.fail('the server neither answered nor exited after its input ended')
    frames = []
    stream = io.BytesIO(out)
    while (f := read_frame(stream)) is not None:
        frames.append(f)
    return frames, proc.returncode


class FramesTest(unittest.TestCase):
    def test_a_deeply_nested_frame_is_a_frame_error(self):
        with self.assertRaises(FrameError):
            read_frame(io.BytesIO(frame(NESTED)))

    def test_the_server_answers_a_nested_frame_with_fatal_and_exits_at_the_end_of_input(self):
        frames, code = server_frames(self, frame(NESTED))
        self.assertEqual(frames[0]['type'], 'ready')
        self.assertIn({'type': 'fatal', 'code': 'ERR_PROTOCOL'}, [{k: f[k] for k in ('type', 'code')} for f in frames if f['type'] == 'fatal'])
        self.assertEqual(code, 0)


def raw_file(header_text: bytes, data=b''):
    return struct.pack('<Q', len(header_text)) + header_text + data


class SafetensorsHardeningTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def write_raw(self, blob, name='t.safetensors'):
        path = os.path.join(self.dir, name)
        with open(path, 'wb') as f:
            f.write(blob)
        return path

    def test_a_nested_header_and_a_shape_past_2_53_are_safetensors_errors(self):
        cases = [
            (raw_file(NESTED), 'ERR_BAD_HEADER'),
            (raw_file(json.dumps({'x': {'dtype': 'F32', 'shape': [2 ** 70, 0], 'data_offsets': [0, 0]}}).encode()), 'ERR_BAD_SHAPE'),
            (raw_file(json.dumps({'x': {'dtype': 'F32', 'shape': [2 ** 40, 2 ** 40, 0], 'data_offsets': [0, 0]}}).encode()), 'ERR_BAD_SHAPE'),
        ]
        for blob, code in cases:
            with self.subTest(code=code):
                with self.assertRaises(SafetensorsError) as caught:
                    read_file(self.write_raw(blob))
                self.assertEqual(caught.exception.code, code)

    def test_a_refusal_quotes_a_hostile_name_dtype_or_shape_only_in_part(self):
        # A checkpoint handed out for scoring is the coordinator's bytes; its names reach the
        # agent in the child's error frame, which the agent refuses past 16 MiB by killing the child.
        long = 'w' * 5_000_000
        cases = [
            (raw_file(json.dumps({long: {'dtype': 'F99', 'shape': [1], 'data_offsets': [0, 4]}}).encode(), b'\0' * 4), 'ERR_UNKNOWN_DTYPE'),
            (raw_file(json.dumps({'x': {'dtype': long, 'shape': [1], 'data_offsets': [0, 4]}}).encode(), b'\0' * 4), 'ERR_UNKNOWN_DTYPE'),
            (raw_file(json.dumps({'x': {'dtype': 'F32', 'shape': [1] * 1_000_000, 'data_offsets': [0, 8]}}).encode(), b'\0' * 8), 'ERR_SIZE_MISMATCH'),
            (raw_file(json.dumps({long: {'dtype': 'F32', 'shape': [1], 'data_offsets': [4, 8]}}).encode(), b'\0' * 8), 'ERR_BAD_OFFSETS'),
        ]
        for blob, code in cases:
            with self.subTest(code=code):
                with self.assertRaises(SafetensorsError) as caught:
                    read_file(self.write_raw(blob))
                self.assertEqual(caught.exception.code, code)
                self.assertLess(len(str(caught.exception)), 2000)

    def test_the_server_answers_a_checkpoint_with_a_huge_tensor_name_in_a_frame_the_agent_reads(self):
        weights = self.write_raw(raw_file(json.dumps({'w' * 20_000_000: {'dtype': 'F99', 'shape': [1], 'data_offsets': [0, 4]}}).encode(), b'\0' * 4), 'weights.safetensors')
        windows = os.path.join(self.dir, 'windows.safetensors')
        write_file(windows, {'tokens': np.zeros((1, 1, 5), dtype=np.int32)})
        request = {'type': 'evaluate', 'id': 1, 'config': TINY, 'weightsFile': weights, 'windowsFile': windows, 'scales': [0]}
        # read_frame holds frames to the agent's own 16 MiB cap (torch-child.ts MAX_FRAME_BYTES).
        frames, _ = server_frames(self, frame(json.dumps(request).encode()))
        answers = [f for f in frames if f.get('id') == 1]
        self.assertEqual([(f['type'], f['code']) for f in answers], [('error', 'ERR_BAD_INPUT')])
        self.assertLess(len(answers[0]['message']), 2000)

    def test_a_failed_write_leaves_no_temp_file(self):
        # The target is a folder, so the final rename fails after the whole temp file was written.
        target = os.path.join(self.dir, 'state.safetensors')
        os.mkdir(target)
        with self.assertRaises(OSError):
            write_file(target, {'m': np.zeros(1024, dtype=np.float32)})
        self.assertEqual(sorted(os.listdir(self.dir)), ['state.safetensors'])

    def test_sweep_removes_other_processes_temp_files_and_keeps_this_ones(self):
        names = ['inner-adamw.safetensors.tmp12345', 'local.safetensors.tmp7', f'inner-adamw.safetensors.tmp{os.getpid()}',
                 'inner-adamw.safetensors', 'notes.tmpx']
        for name in names:
            with open(os.path.join(self.dir, name), 'wb') as f:
                f.write(b'x')
        self.assertEqual(sorted(sweep_temp_files(self.dir)), ['inner-adamw.safetensors.tmp12345', 'local.safetensors.tmp7'])
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(names[2:]))
        self.assertEqual(sweep_temp_files(os.path.join(self.dir, 'missing')), [])


TINY = {'vocab_size': 16, 'hidden_size': 8, 'intermediate_size': 16, 'num_hidden_layers': 1, 'num_attention_heads': 2, 'max_position_embeddings': 64}
RECIPE = {'innerSteps': 3, 'batchSize': 2, 'seqLen': 4, 'lr': 1e-3, 'warmupSteps': 0, 'weightDecay': 0.0, 'beta1': 0.9, 'beta2': 0.95, 'gradClip': 1.0}


class TrainerInputTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.trainer = ResidentTrainer(torch.device('cpu'))

    def test_a_beta_of_one_is_a_bad_input_not_an_internal_error(self):
        for key in ('beta1', 'beta2'):
            req = {'config': TINY, 'recipe': {**RECIPE, key: 1}, 'stateDir': self.dir, 'outFile': os.path.join(self.dir, 'out.safetensors'),
                   'baseFile': 'x', 'batchesFile': 'y', 'totalInnerSteps': 10}
            with self.assertRaises(ExecutorFailure) as caught:
                self.trainer.train(req, None, lambda: False)
            self.assertEqual(caught.exception.code, 'ERR_BAD_INPUT')
            self.assertIn(key, caught.exception.message)

    def test_a_train_request_sweeps_an_earlier_childs_temp_files(self):
        stale = os.path.join(self.dir, 'inner-adamw.safetensors.tmp99999999')
        with open(stale, 'wb') as f:
            f.write(b'half')
        req = {'config': TINY, 'recipe': {**RECIPE, 'beta1': 1}, 'stateDir': self.dir, 'outFile': os.path.join(self.dir, 'out.safetensors')}
        with self.assertRaises(ExecutorFailure):
            self.trainer.train(req, None, lambda: False)
        self.assertFalse(os.path.exists(stale))

    def test_batches_reach_the_device_one_step_at_a_time_as_int64(self):
        tokens = np.arange(3 * 2 * 5, dtype=np.int32).reshape(3, 2, 5) % 16
        path = os.path.join(self.dir, 'batches.safetensors')
        write_file(path, {'tokens': tokens})
        windows = self.trainer._load_batches(path, 3, 2, 4, 16, 1, 2)
        self.assertFalse(isinstance(windows, torch.Tensor), 'not every step resident at once')
        self.assertEqual(len(windows), 3)
        for step in range(3):
            rows = windows[step]
            self.assertEqual(rows.dtype, torch.int64)
            self.assertEqual(rows.device, torch.device('cpu'))
            np.testing.assert_array_equal(rows.numpy(), tokens[step, 1:2])
        with self.assertRaises(ExecutorFailure) as caught:
            self.trainer._load_batches(path, 3, 2, 4, 15)
        self.assertEqual(caught.exception.code, 'ERR_BAD_INPUT')
        self.assertIn('token ids must lie in [0, 15)', caught.exception.message)
        with self.assertRaises(ExecutorFailure) as caught:
            self.trainer._load_batches(path, 4, 2, 4, 16)
        self.assertIn('shape [4, 2, 5]', caught.exception.message)


if __name__ == '__main__':
    unittest.main()
