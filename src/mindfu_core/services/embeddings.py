"""The embeddings use case: check the request against the served model, embed, count the tokens."""

from __future__ import annotations

from collections.abc import Sequence

from mindfu_core.domain.embeddings import Embeddings
from mindfu_core.domain.text import check_text
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_core.ports.embedder import Embedder

#: Inputs per request, as OpenAI allows.
MAX_INPUTS = 2048


class EmbeddingService:
    """Serves the one embedding model the server retrieves with (its vectors must match the store's)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    def accepts(self, model: str) -> bool:
        """Whether ``model`` names the served model (its id, or its sentence-transformers name)."""
        return model in (self.model_id, f"sentence-transformers/{self.model_id}")

    async def embed(self, model: str, texts: Sequence[str], *, dimensions: int | None = None) -> Embeddings:
        """Vectors for ``texts``; ``NotFound`` for another model, ``InvalidRequest`` for bad input."""
        if not self.accepts(model):
            raise NotFound(
                f"The embedding model '{model}' does not exist; this server embeds with '{self.model_id}'",
                param="model",
                code="model_not_found",
            )
        if dimensions is not None and dimensions != self._embedder.dimension:
            raise InvalidRequest(
                f"{self.model_id} has {self._embedder.dimension} dimensions and cannot shorten them",
                param="dimensions",
            )
        if not texts:
            raise InvalidRequest("input must not be empty", param="input")
        if len(texts) > MAX_INPUTS:
            raise InvalidRequest(f"at most {MAX_INPUTS} inputs per request", param="input")
        for position, text in enumerate(texts):
            if not text:
                raise InvalidRequest(f"input[{position}] is an empty string", param="input")
            check_text(text, f"input[{position}]")
        vectors = await self._embedder.embed(texts)
        tokens = await self._embedder.count_tokens(texts)
        return Embeddings(model=self.model_id, vectors=tuple(tuple(v) for v in vectors), prompt_tokens=tokens)
