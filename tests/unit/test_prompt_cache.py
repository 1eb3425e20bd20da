"""HostPromptCache: longest shared prefix wins, per adapter, bounded in bytes (least recently used out)."""

from __future__ import annotations

from mindfu_adapters.llm.prompt_cache import HostPromptCache, shared_prefix


def test_shared_prefix() -> None:
    assert shared_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert shared_prefix([1, 2], [1, 2, 3]) == 2
    assert shared_prefix([], [1]) == 0
    assert shared_prefix([5], [6]) == 0


def test_the_kept_prefix_sharing_most_of_the_prompt_is_found_and_adapters_are_apart() -> None:
    cache = HostPromptCache(1000)
    cache.put([1, 2, 3, 4], None, b"a" * 10)
    cache.put([1, 2, 9, 9, 9], None, b"b" * 10)
    cache.put([1, 2, 3, 4, 5, 6], "lora", b"c" * 10)
    found = cache.best([1, 2, 3, 4, 5, 6, 7], None)
    assert found is not None and found[0] == 4 and found[1].state == b"a" * 10
    lora = cache.best([1, 2, 3, 4, 5, 6, 7], "lora")
    assert lora is not None and lora[0] == 6
    assert cache.best([7, 7], None) is None
    assert cache.best([1, 2, 3], "other") is None


def test_a_longer_copy_of_a_kept_prefix_replaces_it() -> None:
    cache = HostPromptCache(1000)
    cache.put([1, 2, 3], None, b"x" * 10)
    cache.put([1, 2, 3, 4, 5], None, b"y" * 20)
    assert len(cache) == 1 and cache.size_bytes == 20


def test_the_cache_holds_at_most_its_bytes_and_drops_the_least_recently_used() -> None:
    cache = HostPromptCache(100)
    cache.put([1], None, b"1" * 40)
    cache.put([2], None, b"2" * 40)
    assert cache.best([1, 0], None) is not None  # [1] is now the most recently used
    cache.put([3], None, b"3" * 40)  # 120 > 100: the least recently used, [2], goes
    assert cache.size_bytes == 80 and cache.evictions == 1
    assert cache.best([2], None) is None
    assert cache.best([1], None) is not None and cache.best([3], None) is not None
    assert not cache.put([4], None, b"4" * 101)  # larger than the whole cache: not kept, nothing dropped
    assert len(cache) == 2 and cache.size_bytes == 80
