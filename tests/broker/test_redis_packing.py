"""The broker's Redis client packs commands with hiredis and Redis reads them as before."""

from __future__ import annotations

import pytest
import redis.asyncio

from leasq_broker.redis_packing import pack_with_hiredis


@pytest.mark.single_redis("a plain client; tests/cluster checks the cluster client's packing")
async def test_commands_packed_by_hiredis_carry_binary_text_and_numbers_unchanged(
    redis_url: str,
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    pack_with_hiredis(client)
    try:
        assert client.connection_pool.connection_class.__name__.startswith("Hiredis")
        binary = b"\x00\xff\r\n$3\r\n*" * 1000
        await client.set("binary", binary)
        assert await client.get("binary") == binary
        sha = await client.script_load("return {KEYS[1], ARGV[1], ARGV[2], ARGV[3]}")
        reply = await client.evalsha(sha, 1, "k:{é}", "ü" * 300, 42, 1.5)
        assert reply == [b"k:{\xc3\xa9}", "ü".encode() * 300, b"42", b"1.5"]
        pipe = client.pipeline(transaction=True)
        pipe.sadd("set", "a", "b")
        pipe.execute_command("CONFIG GET", "maxmemory")  # a command name of two words
        replies = await pipe.execute()
        names = {k.decode() if isinstance(k, bytes) else k for k in replies[1]}
        assert replies[0] == 2 and names == {"maxmemory"}
    finally:
        await client.aclose()
