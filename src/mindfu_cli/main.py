"""``mindfu``: serve, chat, models, ingest, documents, conversations, train, keys, db (lazy imports)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mindfu_core import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mindfu", description="MindFu: a self-hosted LLM platform.")
    parser.add_argument("--version", action="version", version=f"mindfu {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the OpenAI-compatible HTTP server and the gRPC services")
    serve.add_argument(
        "--role",
        choices=("all", "core", "gateway"),
        default="all",
        help="all: HTTP and gRPC over one process (default); core: gRPC only; "
        "gateway: HTTP over a remote core (--core)",
    )
    serve.add_argument("--host", help="HTTP address to bind (default: MINDFU_HTTP__HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default: MINDFU_HTTP__PORT or 11434)")
    serve.add_argument("--grpc-host", help="gRPC address to bind (default: MINDFU_GRPC__HOST or 127.0.0.1)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default: MINDFU_GRPC__PORT or 50051)")
    serve.add_argument("--core", metavar="HOST:PORT", help="the core a gateway uses (MINDFU_CORE__ADDRESS)")
    serve.add_argument("--log-level", help="debug, info, warning, error")

    from mindfu_cli.connect import SERVER_HELP

    chat = commands.add_parser("chat", help="chat with the model in this terminal")
    chat.add_argument("prompt", nargs="?", help="one prompt to answer; without it, an interactive session")
    chat.add_argument("--model", help="model id (default: the first served model)")
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--max-tokens", type=int, default=512)
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.add_argument("--server", metavar="URL", help=SERVER_HELP)

    models = commands.add_parser("models", help="inspect the configured models")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    models_commands.add_parser("list", help="list the models MindFu serves").add_argument(
        "--server", metavar="URL", help="what a running server serves (default: what the settings configure)"
    )
    prepare = models_commands.add_parser(
        "prepare", help="build the offline embedding model (all-MiniLM-L6-v2 as ONNX) in the data directory"
    )
    prepare.add_argument("--force", action="store_true", help="rebuild even if it is already prepared")
    pull = models_commands.add_parser(
        "pull", help="download a fastembed embedding model from its hub (the only command that does)"
    )
    pull.add_argument("name", help="a fastembed model name, e.g. BAAI/bge-small-en-v1.5")

    ingest = commands.add_parser("ingest", help="index files and folders for retrieval")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders walked recursively")
    ingest.add_argument("--collection", help="the collection to add to (default: MINDFU_RAG__COLLECTION)")
    ingest.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only matching files (repeatable)"
    )
    ingest.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip matching files (repeatable)"
    )
    ingest.add_argument("--metadata", help="a JSON object stored with every document")
    ingest.add_argument("--server", metavar="URL", help=SERVER_HELP)
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")

    documents = commands.add_parser("documents", help="list, show or delete indexed documents")
    documents_commands = documents.add_subparsers(dest="documents_command", metavar="ACTION")
    listing = documents_commands.add_parser("list", help="documents, newest first")
    listing.add_argument("--collection")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    for name, text in (("show", "one document"), ("delete", "remove a document and its chunks")):
        action = documents_commands.add_parser(name, help=text)
        action.add_argument("document_id", metavar="ID")
    for action in documents_commands.choices.values():
        action.add_argument("--server", metavar="URL", help=SERVER_HELP)
        action.add_argument("--json", action="store_true", help="print JSON")

    conversations = commands.add_parser("conversations", help="review, rate and export logged conversations")
    conversations_commands = conversations.add_subparsers(dest="conversations_command", metavar="ACTION")
    recent = conversations_commands.add_parser("list", help="conversations, most recently updated first")
    recent.add_argument("--limit", type=int, default=20)
    recent.add_argument("--after", metavar="CURSOR", help="continue a listing where the last one ended")
    export = conversations_commands.add_parser("export", help="write fine-tuning JSONL, oldest first")
    export.add_argument("-o", "--output", metavar="FILE", help="the file to write (default: stdout)")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.add_argument("--min-turns", type=int, metavar="N", help="at least N assistant messages")
    export.add_argument("--min-response-chars", type=int, metavar="N", help="each reply N characters or more")
    export.add_argument("--max-response-chars", type=int, metavar="N", help="each reply N characters or less")
    for action in (recent, export):
        action.add_argument("--since", metavar="TIME", help="updated at or after (ISO 8601; no zone is UTC)")
        action.add_argument("--until", metavar="TIME", help="updated before (ISO 8601; no zone is UTC)")
        action.add_argument("--model")
        action.add_argument("--status", choices=["ok", "error", "cancelled"], help="of the latest completion")
        action.add_argument("--user", help="the requests' user field")
        action.add_argument("--min-rating", type=int, metavar="N", help="latest rating at least N")
        action.add_argument("--max-rating", type=int, metavar="N", help="latest rating at most N")
        rated = action.add_mutually_exclusive_group()
        rated.add_argument("--rated", action="store_const", const=True, help="only rated conversations")
        rated.add_argument("--unrated", dest="rated", action="store_const", const=False, help="only unrated")
    for name, text in (("show", "one conversation with its messages"), ("delete", "remove a conversation")):
        conversations_commands.add_parser(name, help=text).add_argument("conversation_id", metavar="ID")
    rate = conversations_commands.add_parser("feedback", help="rate a conversation")
    rate.add_argument("conversation_id", metavar="ID")
    rate.add_argument("--rating", type=int, required=True, help="-1 or 1 (thumbs), or 1 to 5")
    rate.add_argument("--comment")
    rate.add_argument("--completion", metavar="COMPLETION_ID", help="rate this completion of it")
    for action in conversations_commands.choices.values():
        action.add_argument("--server", metavar="URL", help=SERVER_HELP)
        if action is not export:
            action.add_argument("--json", action="store_true", help="print JSON")

    training = commands.add_parser("train", help="fine-tune a served model (here, or through a server)")
    train_commands = training.add_subparsers(dest="train_command", metavar="ACTION")
    start = train_commands.add_parser("start", help="start a job on the logged conversations or a JSONL file")
    start.add_argument("--model", required=True, help="the served model to tune")
    start.add_argument("--file", metavar="JSONL", help="train on this file (OpenAI chat format) instead")
    start.add_argument("--epochs", type=int)
    start.add_argument("--max-steps", type=int)
    start.add_argument("--learning-rate", type=float)
    start.add_argument("--lora-r", type=int)
    start.add_argument("--min-turns", type=int, help="conversations with at least N assistant replies")
    start.add_argument("--suffix", help="the tuned model's name part")
    start.add_argument("--experiment", help="the MLflow experiment")
    start.add_argument("--register", choices=["always", "if_better", "never"])
    status = train_commands.add_parser("status", help="a job (default: the newest) with its latest events")
    status.add_argument("job_id", nargs="?", metavar="ID")
    for action in (start, status):
        action.add_argument("--follow", action="store_true", help="wait for the end, with a progress bar")
        action.add_argument("--quiet", action="store_true", help="no progress bar")
    train_commands.add_parser("cancel", help="stop a job after its current step").add_argument(
        "job_id", metavar="ID"
    )
    jobs = train_commands.add_parser("list", help="jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20)
    for action in train_commands.choices.values():
        action.add_argument(
            "--server",
            metavar="URL",
            help="a running server: http://HOST:PORT or grpc://HOST:PORT (its API key from MINDFU_API_KEY); "
            "without it, `start` trains in this process",
        )
        action.add_argument("--json", action="store_true", help="print JSON")

    api_keys = commands.add_parser("keys", help="create, list and revoke API keys (tenants and scopes)")
    keys_commands = api_keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = keys_commands.add_parser("create", help="a new key; its secret alone on the last line")
    create.add_argument("--tenant", required=True, help="the tenant its calls act for")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help="chat, documents:read, documents:write, conversations:read, training, admin or metrics "
        "(repeatable)",
    )
    create.add_argument("--name", help="a name to recognise it by")
    keys_commands.add_parser("list", help="every key, revoked ones included").add_argument(
        "--tenant", help="only this tenant's"
    )
    keys_commands.add_parser("revoke", help="revoke a key at once").add_argument("key_id", metavar="ID")
    for action in keys_commands.choices.values():
        action.add_argument(
            "--server",
            metavar="URL",
            help="a running server (http:// or grpc://) and the admin key in MINDFU_API_KEY; without it, "
            "this data directory's database",
        )
        action.add_argument("--json", action="store_true", help="print JSON")

    database = commands.add_parser("db", help="migrate the database schema (alembic)")
    db_commands = database.add_subparsers(dest="db_command", metavar="ACTION")
    db_commands.add_parser("upgrade", help="to the newest schema").add_argument("revision", nargs="?")
    db_commands.add_parser("downgrade", help="back one revision or to REVISION").add_argument(
        "revision", nargs="?"
    )
    db_commands.add_parser("current", help="the schema revision")
    db_commands.add_parser("history", help="every revision, marking the current one")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from mindfu_cli.serve import serve

        return serve(
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            role=args.role,
            grpc_host=args.grpc_host,
            grpc_port=args.grpc_port,
            core=args.core,
        )
    if args.command == "chat":
        from mindfu_cli.chat import chat

        return chat(
            prompt=args.prompt,
            model=args.model,
            system=args.system,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            server=args.server,
        )
    if args.command == "models" and args.models_command == "list":
        from mindfu_cli.models import list_models

        return list_models(args.server)
    if args.command == "models" and args.models_command == "prepare":
        from mindfu_cli.models import prepare_models

        return prepare_models(force=args.force)
    if args.command == "models" and args.models_command == "pull":
        from mindfu_cli.models import pull_model

        return pull_model(args.name)
    if args.command == "ingest":
        from mindfu_cli.documents import ingest

        return ingest(
            paths=args.paths,
            collection=args.collection,
            include=args.include,
            exclude=args.exclude,
            metadata=args.metadata,
            server=args.server,
            quiet=args.quiet,
        )
    if args.command == "documents" and args.documents_command:
        from mindfu_cli.documents import documents

        return documents(
            action=args.documents_command,
            document_id=getattr(args, "document_id", None),
            collection=getattr(args, "collection", None),
            limit=getattr(args, "limit", 50),
            offset=getattr(args, "offset", 0),
            server=args.server,
            as_json=args.json,
        )
    if args.command == "conversations" and args.conversations_command:
        from mindfu_cli.conversations import conversations

        return conversations(args.conversations_command, vars(args))
    if args.command == "train" and args.train_command:
        from mindfu_cli.train import train

        return train(args.train_command, vars(args))
    if args.command == "keys" and args.keys_command:
        from mindfu_cli.keys import keys

        return keys(args.keys_command, vars(args))
    if args.command == "db" and args.db_command:
        from mindfu_cli.db import db

        return db(action=args.db_command, revision=getattr(args, "revision", None))
    parser.print_help(sys.stderr if args.command else sys.stdout)
    return 2 if args.command else 0
