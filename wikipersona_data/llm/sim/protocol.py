"""Pieces of the OpenAI wire protocol shared by every route: error bodies, model checks, request ids."""

from __future__ import annotations

import hashlib
from typing import Any

from wikipersona_data.llm.sim.config import SimConfig
from wikipersona_data.llm.sim.schema_fill import canonical


class RequestError(Exception):
    """A request the simulator rejects, carried to the HTTP layer as an OpenAI error body."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def request_hash(body: Any) -> str:
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def check_model(model: Any, cfg: SimConfig) -> str:
    if not isinstance(model, str) or not model:
        raise RequestError(400, "'model' must be a non-empty string", "invalid_value", "model")
    if model not in cfg.models:
        raise RequestError(
            404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found", "model"
        )
    return model
