"""KeyService: who calls (settings keys, stored keys, none), scopes, tenants, revocation and the audit."""

from __future__ import annotations

import pytest

from mindfu_adapters.store.keys import MemoryKeyStore
from mindfu_core.domain.principals import ALL_SCOPES, ANONYMOUS, DEFAULT_TENANT, Principal, Scope
from mindfu_core.errors import InvalidRequest, NotFound, PermissionDenied, Unauthenticated
from mindfu_core.services.auth import KEY_PREFIX, KeyService

SECRET = b"s" * 32
OPERATOR = Principal(key_id=None, tenant=DEFAULT_TENANT, scopes=ALL_SCOPES)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def service(store: MemoryKeyStore | None = None, **kwargs: object) -> KeyService:
    return KeyService(store if store is not None else MemoryKeyStore(), secret=SECRET, **kwargs)  # type: ignore[arg-type]


async def test_a_server_without_keys_takes_every_call_as_the_default_tenant() -> None:
    keys = service()
    assert await keys.whoami(None) is ANONYMOUS
    assert await keys.whoami("Bearer anything") is ANONYMOUS


async def test_settings_keys_are_admins_of_the_default_tenant_with_a_salted_id() -> None:
    keys = service(bootstrap=["boot-key"])
    found = await keys.whoami("Bearer boot-key")
    assert found.tenant == DEFAULT_TENANT and found.scopes == ALL_SCOPES
    assert found.key_id is not None and found.key_id.startswith("key_")
    other = KeyService(MemoryKeyStore(), secret=b"t" * 32, bootstrap=["boot-key"])
    assert (await other.whoami("Bearer boot-key")).key_id != found.key_id  # the id depends on the secret
    with pytest.raises(Unauthenticated) as missing:
        await keys.whoami(None)
    assert missing.value.code == "missing_api_key"
    with pytest.raises(Unauthenticated):
        await keys.whoami("Bearer wrong")
    with pytest.raises(Unauthenticated):
        await keys.whoami("Basic boot-key")


async def test_a_created_key_is_stored_as_a_keyed_digest_and_acts_for_its_tenant() -> None:
    store = MemoryKeyStore()
    keys = service(store)
    made = await keys.create(OPERATOR, tenant="acme", scopes=["chat", "documents:read"], name="ci")
    assert made.secret.startswith(KEY_PREFIX) and len(made.secret) > 40
    assert made.key.prefix == made.secret[:10] and made.key.name == "ci"
    stored = [digest for _, digest in store._keys.values()]
    assert made.secret not in stored and keys.digest(made.secret) in stored
    caller = await keys.whoami(f"Bearer {made.secret}")
    assert caller == Principal(
        key_id=made.key.id, tenant="acme", scopes=frozenset({Scope.CHAT, Scope.DOCUMENTS_READ})
    )
    assert caller.allows(Scope.CHAT) and not caller.allows(Scope.TRAINING)
    with pytest.raises(PermissionDenied) as denied:
        caller.require(Scope.DOCUMENTS_WRITE)
    assert "documents:write" in denied.value.message
    # once a key is stored, calls without one are refused
    with pytest.raises(Unauthenticated):
        await keys.whoami(None)
    [event] = await store.events()
    assert (event.action, event.target, event.tenant) == ("key.create", made.key.id, "acme")


@pytest.mark.parametrize(
    ("tenant", "scopes", "param"),
    [
        ("acme", [], "scopes"),
        ("acme", ["chat", "root"], "scopes"),
        ("a b", ["chat"], "tenant"),
        ("", ["chat"], "tenant"),
    ],
)
async def test_bad_tenants_and_scopes_are_refused_naming_the_field(
    tenant: str, scopes: list[str], param: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await service().create(OPERATOR, tenant=tenant, scopes=scopes)
    assert raised.value.param == param


async def test_a_revoked_key_stops_at_once_here_and_within_the_cache_time_elsewhere() -> None:
    store, clock = MemoryKeyStore(), Clock()
    here = service(store, clock=clock)
    elsewhere = service(store, clock=clock, cache_s=5.0)
    made = await here.create(OPERATOR, tenant="acme", scopes=["chat"])
    bearer = f"Bearer {made.secret}"
    assert (await elsewhere.whoami(bearer)).tenant == "acme"
    revoked = await here.revoke(OPERATOR, made.key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated) as gone:
        await here.whoami(bearer)
    assert gone.value.code == "revoked_api_key"
    assert (await elsewhere.whoami(bearer)).tenant == "acme"  # still cached there
    clock.now = 5.1
    with pytest.raises(Unauthenticated):
        await elsewhere.whoami(bearer)
    with pytest.raises(Unauthenticated):  # revoking the last key does not open the server
        await here.whoami(None)


async def test_a_tenants_admin_manages_its_own_tenant_only() -> None:
    store = MemoryKeyStore()
    keys = service(store)
    acme_admin = (await keys.create(OPERATOR, tenant="acme", scopes=["admin"])).key.principal
    globex = await keys.create(OPERATOR, tenant="globex", scopes=["chat"])
    chat_only = (await keys.create(OPERATOR, tenant="acme", scopes=["chat"])).key.principal
    mine = await keys.create(acme_admin, tenant="acme", scopes=["chat"])
    assert mine.key.created_by == acme_admin.key_id
    with pytest.raises(PermissionDenied):
        await keys.create(acme_admin, tenant="globex", scopes=["chat"])
    assert {k.tenant for k in await keys.list(acme_admin)} == {"acme"}
    assert {k.tenant for k in await keys.list(acme_admin, tenant="globex")} == {"acme"}
    assert {k.tenant for k in await keys.list(OPERATOR)} == {"acme", "globex"}
    with pytest.raises(NotFound):  # another tenant's key does not exist for it
        await keys.revoke(acme_admin, globex.key.id)
    with pytest.raises(PermissionDenied):
        await keys.list(chat_only)
    with pytest.raises(NotFound):
        await keys.revoke(OPERATOR, "key_missing")
    actions = [(e.action, e.actor) for e in await keys.events(OPERATOR)]
    assert actions[0] == ("key.create", acme_admin.key_id)
    assert {e.tenant for e in await keys.events(acme_admin)} == {"acme"}


async def test_a_flood_of_wrong_keys_does_not_grow_the_cache_without_bound() -> None:
    keys = service(bootstrap=["boot"])
    for number in range(10_050):
        with pytest.raises(Unauthenticated):
            await keys.whoami(f"Bearer wrong-{number}")
    assert len(keys._found) <= 10_001
