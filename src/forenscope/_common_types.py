"""Tiny models shared by `forenscope.types` and `forenscope.mllm.types`.

They live here so that the Report (in `types`) can hold the MLLM results (in `mllm.types`)
while the MLLM models still use `ErrorInfo`, without a circular import. Import them from
`forenscope.types`, which re-exports them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class ErrorInfo(_Model):
    type: str
    message: str
