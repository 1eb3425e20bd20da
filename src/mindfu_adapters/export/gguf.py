"""A tuned model as GGUF for llama.cpp, written by llama.cpp's ``convert_hf_to_gguf.py``.

The script is used as a tool, not copied into MindFu: the first export fetches the source distribution of
the installed llama-cpp-python from PyPI (``pip download --no-binary``) and unpacks the converter, its
``conversion`` package and the matching ``gguf-py`` into ``<data_dir>/tools/llama.cpp-<version>``.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from mindfu_core.errors import ConfigurationError, EngineFailure, InvalidRequest

DISTRIBUTION = "llama-cpp-python"
PARTS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion", "gguf-py")
OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def tools_dir(root: Path) -> Path:
    """The converter of the installed llama-cpp-python, fetched and unpacked on first use."""
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigurationError("GGUF export needs llama-cpp-python (make install)") from None
    folder = root / f"llama.cpp-{version}"
    if (folder / "convert_hf_to_gguf.py").exists():
        return folder
    with tempfile.TemporaryDirectory() as scratch:
        fetched = subprocess.run(
            [
                sys.executable, "-m", "pip", "download", f"{DISTRIBUTION}=={version}", "--no-deps",
                "--no-binary", ":all:", "--quiet", "-d", scratch,
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        archives = list(Path(scratch).glob("*.tar.gz"))
        if fetched.returncode != 0 or not archives:
            raise ConfigurationError(
                f"cannot fetch the llama.cpp converter ({DISTRIBUTION}=={version} source from PyPI): "
                f"{fetched.stderr.strip()[-500:]}"
            )
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        prefix = f"{archives[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                if not member.name.startswith(prefix):
                    continue
                inner = member.name[len(prefix) :]
                if inner.split("/", 1)[0] not in PARTS or not (member.isfile() or member.isdir()):
                    continue
                member.name = inner
                archive.extract(member, partial, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)
    return folder


def export_gguf(model_dir: Path, out_file: Path, *, tools: Path, outtype: str = "q8_0") -> Path:
    """Convert a Hugging Face model folder into ``out_file`` (never a half-written file under that name)."""
    if outtype not in OUTTYPES:
        raise InvalidRequest(f"GGUF type {outtype!r} is not one of {', '.join(OUTTYPES)}", param="outtype")
    converter = tools_dir(tools)
    partial = out_file.with_name(out_file.name + ".partial")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(converter / "gguf-py"), str(converter)])}
    done = subprocess.run(
        [
            sys.executable, str(converter / "convert_hf_to_gguf.py"), str(model_dir),
            "--outfile", str(partial), "--outtype", outtype,
        ],
        capture_output=True,
        text=True,
        env=env,
    )  # fmt: skip
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise EngineFailure(f"llama.cpp could not convert {model_dir} to GGUF: {done.stderr.strip()[-800:]}")
    partial.replace(out_file)
    return out_file


def export_lora_gguf(
    adapter_dir: Path, base_dir: Path, out_file: Path, *, tools: Path, outtype: str = "f16"
) -> Path:
    """Convert a PEFT LoRA adapter of the Hugging Face model ``base_dir`` into a LoRA GGUF that llama.cpp
    applies on that model's GGUF (never a half-written file under ``out_file``)."""
    if outtype not in OUTTYPES:
        raise InvalidRequest(f"GGUF type {outtype!r} is not one of {', '.join(OUTTYPES)}", param="outtype")
    converter = tools_dir(tools)
    partial = out_file.with_name(out_file.name + ".partial")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(converter / "gguf-py"), str(converter)])}
    done = subprocess.run(
        [
            sys.executable, str(converter / "convert_lora_to_gguf.py"), "--base", str(base_dir),
            "--outfile", str(partial), "--outtype", outtype, str(adapter_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
    )  # fmt: skip
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise EngineFailure(
            f"llama.cpp could not convert the adapter {adapter_dir}: {done.stderr.strip()[-800:]}"
        )
    partial.replace(out_file)
    return out_file
