"""The scripts' direct connection (script_lane.py): same replies and errors as redis-py,
pipelined callers each get their own replies, and a call is never sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    NoScriptError,
    ResponseError,
    TimeoutError,
)

from leasq_broker.redis_packing import pack_with_hiredis
from leasq_broker.script_lane import ScriptLane, lane_for
from leasq_broker.scripts import ScriptCall, Scripts

pytestmark = pytest.mark.single_redis("the lane is for one Redis; a cluster keeps redis-py")

ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]), {ARGV[3]}}"


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    pack_with_hiredis(client)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def lane(plain: redis.asyncio.Redis) -> AsyncIterator[ScriptLane]:
    found = lane_for(plain)
    assert found is not None
    try:
        yield found
    finally:
        await found.aclose()


async def _client_ids(client: redis.asyncio.Redis, field: str, value: str) -> list[int]:
    listed = await client.client_list()
    return [int(entry["id"]) for entry in listed if entry.get(field) == value]


async def test_replies_and_error_replies_are_those_redis_py_gives(
    plain: redis.asyncio.Redis, lane: ScriptLane
) -> None:
    sha = await plain.script_load(ECHO)
    failing = await plain.script_load("return redis.call('INCR', KEYS[1])")
    await plain.set("text", "not a number")
    binary = b"\x00\xff\r\n$3\r\n*" * 500
    args = ("k:{é}", binary, 42, "ü")
    expected = await plain.evalsha(sha, 1, *args)
    replies = await lane.execute([("EVALSHA", sha, 1, *args), ("EVALSHA", "0" * 40, 0),
                                  ("EVALSHA", failing, 1, "text")])  # fmt: skip
    assert replies[0] == expected == [b"k:{\xc3\xa9}", binary, 42, ["ü".encode()]]
    assert isinstance(replies[1], NoScriptError)
    with pytest.raises(ResponseError) as raised:
        await plain.evalsha(failing, 1, "text")
    assert isinstance(replies[2], ResponseError) and str(replies[2]) == str(raised.value)


async def test_concurrent_callers_each_get_their_own_replies_in_one_connection(
    plain: redis.asyncio.Redis, lane: ScriptLane
) -> None:
    sha = await plain.script_load("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    # The session Redis may hold other tests' idle connections: count the ones these calls add.
    before = {client["id"] for client in await plain.client_list()}

    async def caller(n: int) -> list[int]:
        replies = await lane.execute([("EVALSHA", sha, 1, f"c{n}", n)] * 3)
        return [int(r) for r in replies]

    results = await asyncio.gather(*(caller(n) for n in range(1, 201)))
    assert results == [[n, 2 * n, 3 * n] for n in range(1, 201)]
    added = [client for client in await plain.client_list() if client["id"] not in before]
    assert len(added) == 1  # the lane's one connection, opened by the first call


async def test_an_empty_call_answers_at_once_and_leaves_the_next_calls_their_replies(
    lane: ScriptLane,
) -> None:
    assert await lane.execute([]) == []
    assert await lane.execute([], transaction=True) == []
    assert await lane.execute([("ECHO", "next")]) == [b"next"]


async def test_a_transaction_runs_whole_and_keeps_run_time_errors_in_place(
    plain: redis.asyncio.Redis, lane: ScriptLane
) -> None:
    replies = await lane.execute([("SET", "a", "1"), ("INCR", "not-a-number-key"),
                                  ("LPUSH", "a", "x"), ("INCR", "a")],
                                 transaction=True)  # fmt: skip
    assert replies[0] == b"OK" and replies[1] == 1 and replies[3] == 2
    assert isinstance(replies[2], ResponseError) and "WRONGTYPE" in str(replies[2])
    with pytest.raises(ResponseError, match="unknown command"):  # queue-time error: EXECABORT
        await lane.execute([("SET", "b", "1"), ("NOSUCHCOMMAND",)], transaction=True)
    assert await plain.exists("b") == 0


async def test_scripts_reload_after_noscript_and_run_the_call_once(
    redis_url: str, plain: redis.asyncio.Redis
) -> None:
    scripts = Scripts(plain)
    assert scripts._lane is not None
    try:
        await scripts.load()
        await plain.script_flush()
        await scripts.call("resume_queue", ["paused:q"], ["channel", "q"])
        await plain.script_flush()
        replies = await scripts.call_each(
            [ScriptCall("resume_queue", ["paused:a"], ["channel", "a"]),
             ScriptCall("resume_queue", ["paused:b"], ["channel", "b"])],
            also=[("SET", "marker", "1")], atomic=True)  # fmt: skip
        assert len(replies) == 2 and not any(isinstance(r, Exception) for r in replies)
        assert await plain.get("marker") == b"1"
    finally:
        await scripts.aclose()


async def test_a_loading_reply_raises_as_redis_py_raises_it_instead_of_being_a_result(
    plain: redis.asyncio.Redis,
) -> None:
    scripts = Scripts(plain)
    scripts._source["loading"] = "return redis.error_reply('LOADING Redis is loading')"
    try:
        await scripts.load()
        with pytest.raises(BusyLoadingError):  # a ConnectionError: the call fails UNAVAILABLE
            await scripts.call("loading", [], [])
        with pytest.raises(BusyLoadingError):
            await scripts.call_each([ScriptCall("loading", [], [])])
        with pytest.raises(BusyLoadingError):
            await scripts.call_many([ScriptCall("loading", [], []), ScriptCall("loading", [], [])])
    finally:
        await scripts.aclose()


async def test_a_call_whose_connection_drops_fails_and_is_not_sent_again(
    redis_url: str, plain: redis.asyncio.Redis
) -> None:
    named = redis.asyncio.Redis.from_url(f"{redis_url}?client_name=the-lane")
    lane = lane_for(named)
    assert lane is not None
    try:
        assert await lane.execute([("PING",)]) == [b"PONG"]  # connected, named by the URL
        blocked = asyncio.ensure_future(lane.execute([("BLPOP", "never", 10)]))
        await asyncio.sleep(0)  # the call is written: execute() writes before it awaits
        (lane_id,) = await _client_ids(plain, "name", "the-lane")
        await plain.client_kill_filter(_id=lane_id)
        with pytest.raises(ConnectionError, match="lost"):
            await blocked
        assert await _client_ids(plain, "cmd", "blpop") == []  # not re-sent on a new connection
        assert await lane.execute([("PING",)]) == [b"PONG"]  # the next call connects again
        assert len(await _client_ids(plain, "name", "the-lane")) == 1
    finally:
        await lane.aclose()
        await named.aclose()


async def test_socket_timeout_fails_a_call_that_gets_no_reply_and_the_lane_recovers(
    redis_url: str,
) -> None:
    client = redis.asyncio.Redis.from_url(f"{redis_url}?socket_timeout=0.2")
    lane = lane_for(client)
    assert lane is not None
    try:
        with pytest.raises(TimeoutError, match=r"within 0\.2 s"):
            await lane.execute([("BLPOP", "never", 5)])
        assert await lane.execute([("ECHO", "after")]) == [b"after"]
    finally:
        await lane.aclose()
        await client.aclose()


async def test_the_lane_authenticates_and_selects_the_url_database(
    redis_url: str, plain: redis.asyncio.Redis
) -> None:
    await plain.execute_command("ACL", "SETUSER", "lane-user", "on", ">lane-pass", "~*", "&*",
                                "+@all")  # fmt: skip
    address = urlsplit(redis_url).netloc
    good = redis.asyncio.Redis.from_url(f"redis://lane-user:lane-pass@{address}/3")
    bad = redis.asyncio.Redis.from_url(f"redis://lane-user:wrong@{address}/3")
    lanes = [lane_for(good), lane_for(bad)]
    try:
        assert lanes[0] is not None and lanes[1] is not None
        await lanes[0].execute([("SET", "in-db-3", "yes")])
        db3 = redis.asyncio.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/3")
        assert await db3.get("in-db-3") == b"yes"
        assert await plain.get("in-db-3") is None
        await db3.aclose()
        with pytest.raises(AuthenticationError):
            await lanes[1].execute([("PING",)])
    finally:
        for lane in lanes:
            if lane is not None:
                await lane.aclose()
        await good.aclose()
        await bad.aclose()
        await plain.execute_command("ACL", "DELUSER", "lane-user")


async def test_sentinel_and_resp3_clients_stay_on_redis_py(redis_url: str) -> None:
    sentinel = Sentinel([("127.0.0.1", 1)])  # type: ignore[no-untyped-call]
    primary = sentinel.master_for("service")
    resp3 = redis.asyncio.Redis.from_url(redis_url, protocol=3)
    try:
        assert lane_for(primary) is None
        assert lane_for(resp3) is None
        assert Scripts(resp3)._lane is None
    finally:
        await primary.aclose()
        await resp3.aclose()
