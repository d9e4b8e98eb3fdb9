"""The safetensors reader/writer: round trips and the refusals the TypeScript reader also makes."""
import json
import os
import struct
import tempfile
import unittest

import numpy as np

from barnraise_torch.safetensors import SafetensorsError, read_file, write_file

GOLDEN = os.path.join(os.path.dirname(__file__), '..', '..', 'trainer', 'test-data', 'golden', 'llama-tiny-gqa.safetensors')


def raw_file(header, data=b''):
    text = json.dumps(header).encode()
    return struct.pack('<Q', len(text)) + text + data


class SafetensorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def path(self, name='t.safetensors'):
        return os.path.join(self.dir, name)

    def write_raw(self, blob):
        with open(self.path(), 'wb') as f:
            f.write(blob)
        return self.path()

    def test_round_trip_keeps_order_dtypes_and_metadata(self):
        tensors = {'b': np.arange(6, dtype=np.float32).reshape(2, 3), 'a': np.array([1, -2], dtype=np.int64), 'c': np.zeros((0,), dtype=np.int32)}
        write_file(self.path(), tensors, {'kind': 'x'})
        metadata, back = read_file(self.path())
        self.assertEqual(metadata, {'kind': 'x'})
        self.assertEqual(list(back), ['b', 'a', 'c'])
        self.assertEqual(back['b'].dtype, 'F32')
        np.testing.assert_array_equal(back['b'].array, tensors['b'])
        np.testing.assert_array_equal(back['a'].to_int64(), tensors['a'])
        with open(self.path(), 'rb') as f:
            self.assertEqual(struct.unpack('<Q', f.read(8))[0] % 8, 0, 'header padded to 8 bytes')

    def test_reads_the_golden_files_written_by_pytorch(self):
        metadata, tensors = read_file(GOLDEN)
        self.assertEqual(metadata['kind'], 'llama-forward-backward')
        self.assertEqual(tensors['input_ids'].dtype, 'I64')

    def test_bf16_is_widened_exactly(self):
        words = np.array([0x3f80, 0xc000], dtype=np.uint16)  # 1.0, -2.0
        blob = raw_file({'x': {'dtype': 'BF16', 'shape': [2], 'data_offsets': [0, 4]}}, words.tobytes())
        _, tensors = read_file(self.write_raw(blob))
        np.testing.assert_array_equal(tensors['x'].to_float32(), [1.0, -2.0])

    def test_refuses_malformed_files_with_codes(self):
        cases = [
            (b'\x01\x00', 'ERR_TRUNCATED'),
            (struct.pack('<Q', 10 ** 9), 'ERR_HEADER_TOO_LARGE'),
            (struct.pack('<Q', 50) + b'{}', 'ERR_TRUNCATED'),
            (raw_file({'x': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 4]}}, b'\0' * 4), 'ERR_SIZE_MISMATCH'),
            (raw_file({'x': {'dtype': 'Q8', 'shape': [1], 'data_offsets': [0, 1]}}, b'\0'), 'ERR_UNKNOWN_DTYPE'),
            (raw_file({'x': {'dtype': ['F32'], 'shape': [1], 'data_offsets': [0, 4]}}, b'\0' * 4), 'ERR_UNKNOWN_DTYPE'),
            (raw_file({'x': {'dtype': {}, 'shape': [1], 'data_offsets': [0, 4]}}, b'\0' * 4), 'ERR_UNKNOWN_DTYPE'),
            (raw_file({'x': {'dtype': 'F32', 'shape': [1], 'data_offsets': [4, 8]}}, b'\0' * 8), 'ERR_BAD_OFFSETS'),
            (raw_file({'x': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}}, b'\0' * 8), 'ERR_BAD_OFFSETS'),
            (raw_file({'x': {'dtype': 'F32', 'shape': [-1], 'data_offsets': [0, 4]}}, b'\0' * 4), 'ERR_BAD_SHAPE'),
            (raw_file([1]), 'ERR_BAD_HEADER'),
        ]
        for blob, code in cases:
            with self.subTest(code=code):
                with self.assertRaises(SafetensorsError) as caught:
                    read_file(self.write_raw(blob))
                self.assertEqual(caught.exception.code, code)


if __name__ == '__main__':
    unittest.main()
