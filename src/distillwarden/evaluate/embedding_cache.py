"""Persistent cache of sentence embeddings, keyed by a hash of the text.

Embedding is by far the slowest step of distribution tests on CPU; identical prompts are
common (shared templates, real prompts reused), so vectors are stored once per distinct text
in ``.npz`` shards under the cache directory and reused across evaluations.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingCache", "text_key"]

Embedder = Callable[[Sequence[str]], np.ndarray]


def text_key(text: str) -> bytes:
    """16-byte key of a text."""
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest()


class EmbeddingCache:
    """Embeddings of texts, computed with ``embedder`` once and kept in ``directory``.

    ``name`` separates caches of different models or truncation settings.
    """

    def __init__(self, directory: str | os.PathLike[str] | None, embedder: Embedder,
                 name: str = "minilm") -> None:
        self.directory = Path(directory) if directory is not None else None
        self.embedder = embedder
        self.name = name
        self._index: dict[bytes, int] = {}
        self._vectors: list[np.ndarray] = []
        self._rows = 0
        self._loaded = False

    def _shards(self) -> list[Path]:
        if self.directory is None or not self.directory.exists():
            return []
        return sorted(self.directory.glob(f"emb-{self.name}-*.npz"))

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for shard in self._shards():
            try:
                with np.load(shard) as data:
                    keys, vecs = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard is recomputed, never trusted
            raw = keys.tobytes()
            self._add([raw[i * 16:(i + 1) * 16] for i in range(len(keys))], vecs)

    def _add(self, keys: list[bytes], vecs: np.ndarray) -> None:
        vecs = np.asarray(vecs, dtype=np.float32)
        for i, k in enumerate(keys):
            if k not in self._index:
                self._index[k] = self._rows + i
        self._vectors.append(vecs)
        self._rows += vecs.shape[0]

    def _matrix(self) -> np.ndarray:
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        return self._vectors[0]

    def __len__(self) -> int:
        self._load()
        return len(self._index)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` (rows in order), embedding only texts not seen before."""
        self._load()
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._index and k not in missing:
                missing[k] = t
        if missing:
            new_keys = list(missing)
            vecs = np.asarray(self.embedder([missing[k] for k in new_keys]), dtype=np.float32)
            self._add(new_keys, vecs)
            self._persist(new_keys, vecs)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        matrix = self._matrix()
        return matrix[np.fromiter((self._index[k] for k in keys), dtype=np.int64,
                                  count=len(keys))]

    def _persist(self, keys: list[bytes], vecs: np.ndarray) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        n = len(self._shards())
        target = self.directory / f"emb-{self.name}-{n:05d}-{os.getpid()}.npz"
        tmp = target.with_name(".tmp-" + target.name)
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.frombuffer(b"".join(keys), dtype="S16"), vectors=vecs)
        os.replace(tmp, target)
