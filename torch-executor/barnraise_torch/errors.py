"""Errors as values with a code and an actionable message, shared by the server and the CLIs."""


class ExecutorFailure(Exception):
    """A failure the agent can act on: ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def to_frame(self, request_id):
        """The ``error`` frame the server answers with."""
        return {'type': 'error', 'id': request_id, 'code': self.code, 'message': self.message, 'retryable': self.retryable}


class RanksBroken(Exception):
    """A multi-device child whose ranks no longer agree where they are (one failed mid-round).

    Nothing but a restart mends that: the server stops, the agent starts a fresh child and redoes
    the round from the files on disk.
    """
