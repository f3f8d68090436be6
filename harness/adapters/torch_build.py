"""What the installed torch was built for (CUDA, ROCm or CPU only), read from its
``version.py`` without importing torch, so that an adapter can say why it cannot run before
paying for the import."""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TorchBuild:
    """What the installed torch was built for, read from ``torch/version.py``."""

    version: str
    cuda: str | None
    hip: str | None


_VERSION_LINE = re.compile(r"^(__version__|cuda|hip)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def torch_build() -> TorchBuild | None:
    """The installed torch's build, or None when torch is not installed.

    Reads ``torch/version.py`` as text, because importing torch takes seconds and ``harness
    list`` must stay fast on a CPU-only install; imports torch only if that file is unreadable.
    """
    spec = importlib.util.find_spec("torch")
    if spec is None:
        return None
    fields: dict[str, Any] = {}
    try:
        folder = next(iter(spec.submodule_search_locations or ()))
        text = (Path(folder) / "version.py").read_text()
        for key, value in _VERSION_LINE.findall(text):
            fields[key] = ast.literal_eval(value)
    except (StopIteration, OSError, ValueError, SyntaxError):
        fields = {}
    if "__version__" in fields and "cuda" in fields:
        return TorchBuild(str(fields["__version__"]), fields["cuda"], fields.get("hip"))
    import torch

    return TorchBuild(torch.__version__, torch.version.cuda,
                      getattr(torch.version, "hip", None))
