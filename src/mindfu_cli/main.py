"""``mindfu``: serve, chat, models. Heavy modules are imported inside commands so ``--help`` is instant."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mindfu_core import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mindfu", description="MindFu: a self-hosted LLM platform.")
    parser.add_argument("--version", action="version", version=f"mindfu {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the OpenAI-compatible HTTP server")
    serve.add_argument("--host", help="address to bind (default: MINDFU_HTTP__HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: MINDFU_HTTP__PORT or 11434)")
    serve.add_argument("--log-level", help="debug, info, warning, error")

    chat = commands.add_parser("chat", help="chat with the model in this terminal")
    chat.add_argument("prompt", nargs="?", help="one prompt to answer; without it, an interactive session")
    chat.add_argument("--model", help="model id (default: the first served model)")
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--max-tokens", type=int, default=512)
    chat.add_argument("--temperature", type=float, default=0.7)

    models = commands.add_parser("models", help="inspect the configured models")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    models_commands.add_parser("list", help="list the models MindFu serves")
    prepare = models_commands.add_parser(
        "prepare", help="build the offline embedding model (all-MiniLM-L6-v2 as ONNX) in the data directory"
    )
    prepare.add_argument("--force", action="store_true", help="rebuild even if it is already prepared")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from mindfu_cli.serve import serve

        return serve(host=args.host, port=args.port, log_level=args.log_level)
    if args.command == "chat":
        from mindfu_cli.chat import chat

        return chat(
            prompt=args.prompt,
            model=args.model,
            system=args.system,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
        )
    if args.command == "models" and args.models_command == "list":
        from mindfu_cli.models import list_models

        return list_models()
    if args.command == "models" and args.models_command == "prepare":
        from mindfu_cli.models import prepare_models

        return prepare_models(force=args.force)
    parser.print_help(sys.stderr if args.command else sys.stdout)
    return 2 if args.command else 0
