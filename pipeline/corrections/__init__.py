"""Score corrections by match officials: a gRPC service (`corrections.proto`) with roles.

    service.py   the server: checks, produces to Kafka, answers from the audit trail
    auth.py      bearer tokens and roles (viewer, editor, admin), the 0600 tokens file
    rules.py     what makes a correction valid, and stale (shared with the scorekeeper)
    audit.py     the scorekeeper's audit trail, read (never written) for answers
    kafka.py     the idempotent producer the corrections go through
    replies.py   protobuf answers from the audit trail
    gen.py       regenerates the committed stubs (`python -m pipeline.corrections.gen`)

`python -m pipeline.corrections --config FILE` runs the service.
"""

from pipeline.corrections.auth import Principal, Role, Tokens, make_tokens_file, token_for
from pipeline.corrections.service import CorrectionsConfig, CorrectionsService, ready, serve

__all__ = [
    "CorrectionsConfig",
    "CorrectionsService",
    "Principal",
    "Role",
    "Tokens",
    "make_tokens_file",
    "ready",
    "serve",
    "token_for",
]
