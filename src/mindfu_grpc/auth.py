"""Which scope each method needs, and the caller of the call being served (set by the interceptor)."""

from __future__ import annotations

from contextvars import ContextVar

from mindfu_core.domain.principals import ANONYMOUS, Principal, Scope

_CHAT = "/mindfu.v1.ChatService/"
_DOCUMENTS = "/mindfu.v1.DocumentService/"

#: method -> the scope it needs; ``None``: any caller with a valid key (the method checks more itself)
METHOD_SCOPES: dict[str, Scope | None] = {
    **{_CHAT + name: Scope.CHAT for name in ("Complete", "StreamComplete", "CompleteText")},
    **{_CHAT + name: Scope.CHAT for name in ("StreamCompleteText", "CountTokens")},
    **{f"/mindfu.v1.ModelService/{name}": Scope.CHAT for name in ("ListModels", "GetModel", "GetStatus")},
    "/mindfu.v1.EmbeddingService/Embed": Scope.CHAT,
    **{_DOCUMENTS + name: Scope.DOCUMENTS_WRITE for name in ("UploadDocument", "AddText", "DeleteDocument")},
    **{_DOCUMENTS + name: Scope.DOCUMENTS_READ for name in ("ListDocuments", "GetDocument", "Retrieve")},
    _DOCUMENTS + "GetDefaults": None,  # what every client reads first, whatever it may do
    **{
        f"/mindfu.v1.ConversationService/{name}": Scope.CONVERSATIONS_READ
        for name in (
            "ListConversations",
            "GetConversation",
            "DeleteConversation",
            "AddFeedback",
            "ExportConversations",
        )
    },
    **{
        f"/mindfu.v1.TrainingService/{name}": Scope.TRAINING
        for name in (
            "CreateJob",
            "GetJob",
            "ListJobs",
            "CancelJob",
            "ListJobEvents",
            "WatchJob",
            "ListCheckpoints",
            "UploadFile",
            "GetFile",
            "ListFiles",
            "DeleteFile",
        )
    },
    **{f"/mindfu.v1.KeyService/{name}": None for name in ("WhoAmI", "CreateKey", "ListKeys", "RevokeKey")},
}

_caller: ContextVar[Principal] = ContextVar("grpc_caller", default=ANONYMOUS)


def scope_of(method: str) -> Scope | None:
    """The scope ``method`` needs; a method missing from the table needs admin (closed by default)."""
    return METHOD_SCOPES.get(method, Scope.ADMIN)


def set_caller(principal: Principal) -> None:
    _caller.set(principal)


def caller() -> Principal:
    """The caller of the call being served."""
    return _caller.get()
