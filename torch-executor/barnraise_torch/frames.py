"""Length-prefixed JSON frames: a 4-byte big-endian unsigned length, then that many bytes of UTF-8 JSON.

Only the standard library, so the server can say "torch is missing" in a frame before it
imports torch. NaN and infinities are not JSON; senders map them to null.
"""
import json
import struct
import threading

MAX_FRAME_BYTES = 16 * 1024 * 1024


class FrameError(Exception):
    """A frame that is too large, truncated or not a JSON object."""


def _read_exact(stream, n):
    # A pipe hands out what has arrived; keep reading until n bytes or the end.
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b''.join(chunks)


def read_frame(stream):
    """The next frame as a dict, or None at a clean end of stream."""
    head = _read_exact(stream, 4)
    if not head:
        return None
    if len(head) < 4:
        raise FrameError('stream ended inside a frame length')
    (n,) = struct.unpack('>I', head)
    if n > MAX_FRAME_BYTES:
        raise FrameError(f'frame of {n} bytes exceeds the {MAX_FRAME_BYTES}-byte cap')
    body = _read_exact(stream, n)
    if len(body) < n:
        raise FrameError('stream ended inside a frame')
    try:
        value = json.loads(body.decode('utf-8'))
    except Exception as err:  # noqa: BLE001 — RecursionError (deep nesting) too: anything else would kill the reader thread
        raise FrameError(f'frame is not UTF-8 JSON: {type(err).__name__}: {err}') from None
    if not isinstance(value, dict):
        raise FrameError('frame must be a JSON object')
    return value


def _finite(value):
    # JSON has no NaN or infinity: a non-finite number travels as null (the agent reads it as "not a number").
    if isinstance(value, float) and (value != value or value in (float('inf'), float('-inf'))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class FrameWriter:
    """Writes frames to a binary stream from any thread."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, frame):
        """Sends one frame; NaN and infinities become null."""
        body = json.dumps(_finite(frame), allow_nan=False, separators=(',', ':')).encode('utf-8')
        with self._lock:
            self._stream.write(struct.pack('>I', len(body)) + body)
            self._stream.flush()
