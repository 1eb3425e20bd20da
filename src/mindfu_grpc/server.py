"""The gRPC server: MindFu's services, standard health checking and server reflection on one port."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

import grpc
from mindfu_adapters.settings import Settings
from mindfu_core.application import Application
from mindfu_core.errors import ConfigurationError
from mindfu_grpc._pb.mindfu.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    documents_pb2,
    documents_pb2_grpc,
    embeddings_pb2,
    embeddings_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)
from mindfu_grpc.errors import ErrorInterceptor
from mindfu_grpc.servicers.chat import ChatServicer, ModelServicer
from mindfu_grpc.servicers.conversations import ConversationServicer
from mindfu_grpc.servicers.documents import DocumentServicer, EmbeddingServicer
from mindfu_grpc.servicers.keys import KeyServicer
from mindfu_grpc.servicers.training import TrainingServicer

log = logging.getLogger(__name__)

#: The full names of MindFu's services, as health checks and reflection know them.
SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (chat_pb2, "ChatService"),
        (models_pb2, "ModelService"),
        (embeddings_pb2, "EmbeddingService"),
        (documents_pb2, "DocumentService"),
        (conversations_pb2, "ConversationService"),
        (training_pb2, "TrainingService"),
        (keys_pb2, "KeyService"),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GrpcOptions:
    """What the server needs beyond the application: keys, bind address and size limits."""

    host: str = "127.0.0.1"
    port: int = 50051
    max_message_bytes: int = 8 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    experiment: str = "mindfu-finetune"
    max_training_file_bytes: int = 512 * 1024 * 1024

    @classmethod
    def from_settings(
        cls, settings: Settings, *, host: str | None = None, port: int | None = None
    ) -> GrpcOptions:
        return cls(
            host=host or settings.grpc.host,
            port=settings.grpc.port if port is None else port,
            max_message_bytes=settings.grpc.max_message_bytes,
            max_upload_bytes=settings.rag.max_upload_bytes,
            experiment=settings.training.experiment,
            max_training_file_bytes=settings.training.max_file_bytes,
        )


class GrpcServer:
    """Serves ``application`` over gRPC; ``start`` binds (port 0 picks a free one), ``stop`` drains."""

    def __init__(self, application: Application, options: GrpcOptions) -> None:
        self._options = options
        limits = [
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
        ]
        self._server = grpc.aio.server(
            interceptors=[ErrorInterceptor(application.keys.whoami)], options=limits
        )
        chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatServicer(application), self._server)
        models_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(application), self._server)
        embeddings_pb2_grpc.add_EmbeddingServiceServicer_to_server(
            EmbeddingServicer(application), self._server
        )
        documents_pb2_grpc.add_DocumentServiceServicer_to_server(
            DocumentServicer(application, max_upload_bytes=options.max_upload_bytes), self._server
        )
        conversations_pb2_grpc.add_ConversationServiceServicer_to_server(
            ConversationServicer(application), self._server
        )
        training_pb2_grpc.add_TrainingServiceServicer_to_server(
            TrainingServicer(
                application, experiment=options.experiment, max_file_bytes=options.max_training_file_bytes
            ),
            self._server,
        )
        keys_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(application), self._server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self.port = 0

    async def start(self) -> int:
        """Bind and serve; returns the bound port."""
        address = f"{self._options.host}:{self._options.port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ConfigurationError(f"cannot bind gRPC to {address} (MINDFU_GRPC__PORT): {exc}") from None
        await self._server.start()
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC serving on %s:%d", self._options.host, self.port)
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING, let calls in flight finish for ``grace`` seconds, then close."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
