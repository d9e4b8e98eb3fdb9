"""Several devices in one child: the server with ``--device cpu,cpu`` (two gloo ranks) against one CPU.

Real processes and the real frame protocol: a round on two ranks must end at the weights one
device reaches on the whole batch, a bad input must be refused by every rank alike (the child
keeps serving), and a rank that dies must take the child down instead of leaving it hung.
"""
import json
import math
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from barnraise_torch.config import param_specs
from barnraise_torch.presets import PRESETS
from barnraise_torch.ranks import row_share
from barnraise_torch.safetensors import read_file, write_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Child:
    """A server process and its frames."""

    def __init__(self, device, extra_env=None):
        env = {**os.environ, 'PYTHONPATH': ROOT, 'PYTHONDONTWRITEBYTECODE': '1', **(extra_env or {})}
        self.proc = subprocess.Popen([sys.executable, '-m', 'barnraise_torch.server', '--device', device, '--threads', '1'],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        self.ready = self.next_frame()
        self.next_id = 1

    def next_frame(self):
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            return None
        (n,) = struct.unpack('>I', head)
        return json.loads(self.proc.stdout.read(n))

    def request(self, body):
        rid = self.next_id
        self.next_id += 1
        data = json.dumps({**body, 'id': rid}).encode()
        self.proc.stdin.write(struct.pack('>I', len(data)) + data)
        self.proc.stdin.flush()
        while True:
            frame = self.next_frame()
            if frame is None or (frame['type'] in ('result', 'error') and frame['id'] == rid):
                return frame

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


class RanksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='barnraise-ranks-test-')
        c = PRESETS['tiny']
        cls.config = c.to_json()
        rng = np.random.default_rng(5)
        cls.base = os.path.join(cls.dir, 'base.safetensors')
        write_file(cls.base, {name: (rng.standard_normal(shape) * 0.02 if len(shape) > 1 else np.ones(shape)).astype(np.float32) for name, shape in param_specs(c)})
        cls.steps, cls.batch, cls.seq = 6, 5, 16
        cls.batches = os.path.join(cls.dir, 'batches.safetensors')
        write_file(cls.batches, {'tokens': rng.integers(0, c.vocab_size, (cls.steps, cls.batch, cls.seq + 1)).astype(np.int32)})

    def train_request(self, name, batches=None):
        return {
            'type': 'train', 'config': self.config,
            'recipe': {'innerSteps': self.steps, 'batchSize': self.batch, 'seqLen': self.seq, 'lr': 3e-3, 'warmupSteps': 2,
                       'weightDecay': 0.1, 'beta1': 0.9, 'beta2': 0.95, 'gradClip': 1.0},
            'scheduleOffset': 0, 'totalInnerSteps': 20,
            'baseFile': self.base, 'batchesFile': batches or self.batches,
            'outFile': os.path.join(self.dir, f'{name}.out.safetensors'), 'stateDir': os.path.join(self.dir, name),
            'precision': 'float32', 'checkpointing': 'off', 'memoryLimitBytes': None,
        }

    def test_rows_are_shared_evenly_and_in_order(self):
        self.assertEqual([row_share(5, r, 2) for r in range(2)], [(0, 2), (2, 5)])
        self.assertEqual([row_share(8, r, 4) for r in range(4)], [(0, 2), (2, 4), (4, 6), (6, 8)])

    def test_two_ranks_take_the_steps_one_device_takes_on_the_whole_batch(self):
        one = Child('cpu')
        two = Child('cpu,cpu')
        try:
            self.assertEqual(two.ready['type'], 'ready', two.ready)
            self.assertEqual([r['device'] for r in two.ready['ranks']], ['cpu', 'cpu'])
            for name in ('one', 'two'):
                os.makedirs(os.path.join(self.dir, name), exist_ok=True)
            a = one.request(self.train_request('one'))
            b = two.request(self.train_request('two'))
            self.assertEqual(a['type'], 'result', a)
            self.assertEqual(b['type'], 'result', b)
            self.assertEqual(b['result']['devices'], 2)
            self.assertEqual(b['result']['tokens'], a['result']['tokens'])
            # An uneven split (2 rows and 3) is weighted by rows: the losses agree to float32 rounding.
            np.testing.assert_allclose(b['result']['lossCurve'], a['result']['lossCurve'], rtol=1e-5)
            _, wa = read_file(os.path.join(self.dir, 'one.out.safetensors'))
            _, wb = read_file(os.path.join(self.dir, 'two.out.safetensors'))
            moved = sum(float(np.sum((wa[k].to_float32() - read_file(self.base)[1][k].to_float32()) ** 2)) for k in wa) ** 0.5
            diff = sum(float(np.sum((wa[k].to_float32() - wb[k].to_float32()) ** 2)) for k in wa) ** 0.5
            self.assertGreater(moved, 0)
            self.assertLess(diff / moved, 1e-4, f'two ranks moved {diff / moved:.2e} of the update away from one device')

            # A second round resumes each rank's resident optimizer exactly as one device resumes its own.
            a2 = one.request({**self.train_request('one'), 'scheduleOffset': self.steps})
            b2 = two.request({**self.train_request('two'), 'scheduleOffset': self.steps})
            np.testing.assert_allclose(b2['result']['lossCurve'], a2['result']['lossCurve'], rtol=1e-4)

            # A bad batches file is refused by every rank alike, and the child goes on serving.
            bad = os.path.join(self.dir, 'bad.safetensors')
            with open(bad, 'wb') as f:
                f.write(b'not a safetensors file')
            refused = two.request(self.train_request('two', bad))
            self.assertEqual(refused['type'], 'error', refused)
            self.assertEqual(refused['code'], 'ERR_BAD_INPUT')
            again = two.request(self.train_request('two'))
            self.assertEqual(again['type'], 'result', again)

            fit = two.request({'type': 'fit', 'config': self.config, 'batchSize': 4, 'seqLen': 16, 'precision': 'float32', 'checkpointing': 'off', 'memoryLimitBytes': 1000})
            self.assertEqual(fit['type'], 'result', fit)
            self.assertFalse(fit['result']['fits'])
            self.assertRegex(fit['result']['reason'], r'^rank 0 of 2: the unit needs about')
            measured = two.request({'type': 'measure', 'config': self.config, 'batchSize': 4, 'seqLen': 16, 'steps': 2})
            self.assertEqual(measured['type'], 'result', measured)
            self.assertGreater(measured['result']['tokensPerSecond'], 0)
        finally:
            one.close()
            two.close()
        self.assertEqual(two.proc.returncode, 0)
        self.assertFalse(any(_alive(r['pid']) for r in two.ready['ranks']), 'every rank ended with the child')

    def test_a_rank_that_dies_takes_the_child_down(self):
        child = Child('cpu,cpu')
        try:
            worker = child.ready['ranks'][1]['pid']
            os.kill(worker, signal.SIGKILL)
            deadline = time.time() + 30
            while child.proc.poll() is None and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(child.proc.returncode, 1)
            self.assertIn('rank 1 (cpu) exited', child.proc.stderr.read().decode())
        finally:
            child.close()

    def test_ranks_that_cannot_form_a_group_are_a_fatal_start_with_the_reason(self):
        child = Child('cpu,cpu', {'GLOO_SOCKET_IFNAME': 'no-such-if0'})
        try:
            self.assertEqual(child.ready['type'], 'fatal', child.ready)
            self.assertEqual(child.ready['code'], 'ERR_RANKS_START')
            self.assertIn('GLOO_SOCKET_IFNAME', child.ready['message'])
            self.assertEqual(child.proc.wait(timeout=30), 3)
        finally:
            child.close()

    def test_a_batch_smaller_than_the_ranks_trains_as_one_device_does(self):
        # One row, two ranks: rank 1 has no row of its own and steps on row 0 weighted 0.
        rng = np.random.default_rng(11)
        single = os.path.join(self.dir, 'batches-1.safetensors')
        write_file(single, {'tokens': rng.integers(0, PRESETS['tiny'].vocab_size, (self.steps, 1, self.seq + 1)).astype(np.int32)})
        one = Child('cpu')
        two = Child('cpu,cpu')
        try:
            for name in ('small-one', 'small-two', 'small-sharded'):
                os.makedirs(os.path.join(self.dir, name), exist_ok=True)
            narrow = lambda name: {**self.train_request(name, single), 'recipe': {**self.train_request(name)['recipe'], 'batchSize': 1}}  # noqa: E731
            a = one.request(narrow('small-one'))
            b = two.request(narrow('small-two'))
            c = two.request({**narrow('small-sharded'), 'sharding': 'on'})
            for r in (a, b, c):
                self.assertEqual(r['type'], 'result', r)
            # Rank 1 trained no row of its own: one device trained the batch.
            self.assertEqual(b['result']['devices'], 1)
            self.assertEqual(b['result']['tokens'], a['result']['tokens'])
            self.assertTrue(c['result']['shardedOptimizer'])
            for r in (b, c):
                # The idle rank's weighted-0 loss adds nothing to the step's loss either.
                np.testing.assert_allclose(r['result']['lossCurve'], a['result']['lossCurve'], rtol=1e-5)
            self.assertLess(self.update_gap('small-one', 'small-two'), 1e-4)
            self.assertLess(self.update_gap('small-one', 'small-sharded'), 1e-4)
        finally:
            one.close()
            two.close()

    def test_a_sharded_optimizer_takes_the_steps_one_device_takes_and_writes_the_same_state_file(self):
        from barnraise_torch.optim import STATE_FILE
        one = Child('cpu')
        two = Child('cpu,cpu')
        try:
            for name in ('s-one', 's-two'):
                os.makedirs(os.path.join(self.dir, name), exist_ok=True)
            a = one.request(self.train_request('s-one'))
            b = two.request({**self.train_request('s-two'), 'sharding': 'on'})
            self.assertEqual(b['type'], 'result', b)
            self.assertTrue(b['result']['shardedOptimizer'])
            self.assertFalse(a['result']['shardedOptimizer'])
            np.testing.assert_allclose(b['result']['lossCurve'], a['result']['lossCurve'], rtol=1e-5)
            self.assertLess(self.update_gap('s-one', 's-two'), 1e-4)
            # The ranks' parts make one state file, the one a single device writes.
            ma, sa = read_file(os.path.join(self.dir, 's-one', STATE_FILE))
            mb, sb = read_file(os.path.join(self.dir, 's-two', STATE_FILE))
            self.assertEqual(ma, mb)
            for k in ('m', 'v'):
                gap = np.linalg.norm(sb[k].array - sa[k].array) / np.linalg.norm(sa[k].array)
                self.assertLess(gap, 1e-4, f'{k} is {gap:.2e} of its norm away from one device\'s')
            self.assertFalse(os.path.exists(os.path.join(self.dir, 's-two', STATE_FILE + '.partial')))

            # Round two from the resident shards; round three in a fresh child, each rank reading its part of the file.
            for round_ in (2, 3):
                if round_ == 3:
                    two.close()
                    two = Child('cpu,cpu')
                a = one.request({**self.train_request('s-one'), 'scheduleOffset': self.steps * (round_ - 1)})
                b = two.request({**self.train_request('s-two'), 'scheduleOffset': self.steps * (round_ - 1), 'sharding': 'on'})
                self.assertEqual(b['type'], 'result', b)
                np.testing.assert_allclose(b['result']['lossCurve'], a['result']['lossCurve'], rtol=1e-4)
                self.assertLess(self.update_gap('s-one', 's-two'), 1e-3, f'round {round_}')

            # auto shards exactly when a replica does not fit each device and a shard does. Both
            # CPU ranks plan within the host's memory, so each has half of --max-memory.
            fit = {'type': 'fit', 'config': self.config, 'batchSize': 4, 'seqLen': 16, 'precision': 'float32', 'checkpointing': 'off'}
            replica = two.request({**fit, 'memoryLimitBytes': None, 'sharding': 'off'})['result']
            shard = two.request({**fit, 'memoryLimitBytes': None, 'sharding': 'on'})['result']
            self.assertLess(shard['needBytes'], replica['needBytes'])
            between = shard['needBytes'] + replica['needBytes']
            auto = two.request({**fit, 'memoryLimitBytes': between, 'sharding': 'auto'})['result']
            self.assertTrue(auto['fits'] and auto['shardedOptimizer'], auto)
            self.assertIn('sharded', auto['reason'])
            roomy = two.request({**fit, 'memoryLimitBytes': None, 'sharding': 'auto'})['result']
            self.assertTrue(roomy['fits'])
            self.assertFalse(roomy['shardedOptimizer'])
            refused = two.request({**fit, 'memoryLimitBytes': between, 'sharding': 'off'})['result']
            self.assertFalse(refused['fits'])
            # Room for one replica is not room for two on the same host: refused, saying so.
            one_replica = one.request({**fit, 'batchSize': 2, 'memoryLimitBytes': None, 'sharding': 'off'})['result']
            self.assertEqual(one_replica['needBytes'], replica['needBytes'])
            alone = one.request({**fit, 'batchSize': 2, 'memoryLimitBytes': int(replica['needBytes'] * 1.5), 'sharding': 'off'})['result']
            self.assertTrue(alone['fits'], alone)
            crowded = two.request({**fit, 'memoryLimitBytes': int(replica['needBytes'] * 1.5), 'sharding': 'off'})['result']
            self.assertFalse(crowded['fits'], crowded)
            self.assertRegex(crowded['reason'], r'GiB for each of the 2 ranks that share it$')
            bad = two.request({**fit, 'sharding': 'maybe'})
            self.assertEqual(bad['type'], 'error', bad)
        finally:
            one.close()
            two.close()

    def update_gap(self, one, two):
        """How far the second child's weights are from the first's, relative to how far the first moved from the base."""
        _, base = read_file(self.base)
        _, wa = read_file(os.path.join(self.dir, f'{one}.out.safetensors'))
        _, wb = read_file(os.path.join(self.dir, f'{two}.out.safetensors'))
        moved = sum(float(np.sum((wa[k].to_float32() - base[k].to_float32()) ** 2)) for k in wa) ** 0.5
        diff = sum(float(np.sum((wa[k].to_float32() - wb[k].to_float32()) ** 2)) for k in wa) ** 0.5
        self.assertGreater(moved, 0)
        return diff / moved

    def test_parameters_are_owned_in_contiguous_runs_of_about_equal_size(self):
        from barnraise_torch.ranks import owned_ranges
        self.assertEqual(owned_ranges([10, 1, 1, 10, 5, 5], 3), [(0, 2), (2, 4), (4, 6)])
        self.assertEqual(owned_ranges([100, 1, 1], 3), [(0, 1), (1, 2), (2, 3)])
        sizes = [math.prod(shape) for _, shape in param_specs(PRESETS['125m'])]
        runs = owned_ranges(sizes, 8)
        self.assertEqual(runs[0][0], 0)
        self.assertEqual(runs[-1][1], len(sizes))
        self.assertTrue(all(a[1] == b[0] for a, b in zip(runs, runs[1:])))
        largest = max(sizes)
        for first, end in runs:
            self.assertLess(abs(sum(sizes[first:end]) - sum(sizes) / 8), largest)
        with self.assertRaises(ValueError):
            owned_ranges([1], 2)

    def test_device_lists_that_cannot_work_are_refused(self):
        from barnraise_torch.errors import ExecutorFailure
        from barnraise_torch.ranks import parse_device_list
        self.assertEqual(parse_device_list('cpu'), ['cpu'])
        self.assertEqual(parse_device_list('cpu,cpu'), ['cpu', 'cpu'])
        for bad in ('cpu,', 'cpu,gpu'):
            with self.assertRaises(ExecutorFailure):
                parse_device_list(bad)


if __name__ == '__main__':
    unittest.main()
