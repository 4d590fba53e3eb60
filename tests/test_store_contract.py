"""One contract, two backends: the in-process store and Redis behave the same."""
import threading
import time
import uuid

import pytest

from tests.conftest import REDIS_URL
from wxbot.conversation import Conversation, State, States
from wxbot.memorystore import MemoryStore
from wxbot.redisstore import RedisStore
from wxbot.store import LockTimeout


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    store = RedisStore(REDIS_URL, f"wxbot-contract-{uuid.uuid4().hex[:8]}")
    yield store
    store.clear()


def test_values_expire_after_their_ttl(store):
    store.set("k", "v", ttl=0.2)
    assert store.get("k") == "v"
    time.sleep(0.3)
    assert store.get("k") is None


def test_add_sets_only_when_absent(store):
    assert store.add("once", "first", ttl=5) is True
    assert store.add("once", "second", ttl=5) is False
    assert store.get("once") == "first"


def test_incr_counts_in_a_fixed_window(store):
    assert [store.incr("c", ttl=0.3) for _ in range(3)] == [1, 2, 3]
    time.sleep(0.15)
    store.incr("c", ttl=0.3)  # does not extend the window
    time.sleep(0.2)
    assert store.get("c") is None


def test_ttl_reports_seconds_left(store):
    store.set("t", "v", ttl=10)
    assert 9 < store.ttl("t") <= 10
    assert store.ttl("missing") is None


def test_delete_and_clear(store):
    store.set("a", "1")
    store.set("b", "2")
    store.delete("a")
    assert store.get("a") is None and store.get("b") == "2"
    store.clear()
    assert store.get("b") is None


def test_delete_if_deletes_only_the_value_that_was_read(store):
    store.set("mark", "written-1")
    assert store.delete_if("mark", "written-0") is False and store.get("mark") == "written-1"
    assert store.delete_if("mark", "written-1") is True and store.get("mark") is None
    assert store.delete_if("mark", "written-1") is False


def test_a_lock_is_held_by_one_thread_at_a_time(store):
    inside, overlaps = [], []

    def worker():
        with store.lock("user:1", timeout=5, wait=5):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.05)
            inside.pop()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [1, 1, 1, 1]


def test_a_lock_not_had_in_time_raises(store):
    with store.lock("busy", timeout=5, wait=1), pytest.raises(LockTimeout), store.lock("busy", timeout=5, wait=0.1):
        pass


def test_a_lock_expires_after_its_timeout(store):
    with store.lock("stale", timeout=0.2, wait=1):
        time.sleep(0.3)
        with store.lock("stale", timeout=1, wait=0.1):  # the holder overran: taken over
            pass


class Flow(States):
    first = State()
    second = State()


def test_a_conversation_keeps_state_and_data_between_messages(store):
    conv = Conversation(store, "oA", ttl=10)
    conv.enter(Flow.first, question=1)
    again = Conversation(store, "oA", ttl=10)
    assert again.state == "Flow:first" and again.data == {"question": 1}
    again.update(answer="B")
    assert Conversation(store, "oA", ttl=10).data == {"question": 1, "answer": "B"}


def test_a_conversation_expires_and_finishing_clears_it(store):
    conv = Conversation(store, "oB", ttl=0.2)
    conv.enter(Flow.second)
    time.sleep(0.3)
    assert Conversation(store, "oB", ttl=0.2).state is None
    conv = Conversation(store, "oC", ttl=10)
    conv.enter(Flow.first)
    conv.finish()
    assert Conversation(store, "oC", ttl=10).state is None


def test_conversations_of_different_users_are_separate(store):
    Conversation(store, "oD", ttl=10).enter(Flow.first)
    assert Conversation(store, "oE", ttl=10).state is None


def test_a_list_keeps_its_values_in_order_until_trimmed(store):
    store.push("q", "a", "b")
    store.push("q", "c")
    assert store.peek("q", 2) == ["a", "b"] and store.peek("q", 10) == ["a", "b", "c"]
    store.trim("q", 2)
    assert store.peek("q", 10) == ["c"]
    store.trim("q", 5)
    assert store.peek("q", 10) == []


def test_the_embedded_store_keeps_dedup_keys_and_lists_across_a_restart(tmp_path):
    path = str(tmp_path / "store")
    first = MemoryStore(path)
    first.add("dedup:m:1", "reply", ttl=60)
    first.add("dedup:m:2", "gone soon", ttl=0.1)
    first.set("conv:someone", "not durable", ttl=60)
    first.push("msglog", "x", "y")
    first.trim("msglog", 1)
    time.sleep(0.15)
    second = MemoryStore(path)  # the process was killed and started again
    assert second.get("dedup:m:1") == "reply" and second.add("dedup:m:1", "again", ttl=60) is False
    assert second.get("dedup:m:2") is None and second.get("conv:someone") is None
    assert second.peek("msglog", 10) == ["y"]


def test_a_message_is_begun_once_and_its_sender_locked(store):
    store.set("conv:oA", "state")
    first = store.begin_message("dedup:m:1", "pending", 5, "user:oA", "t1", 5, ["conv:oA", "missing"])
    assert first.claimed and first.locked and first.values == ("state", None)
    again = store.begin_message("dedup:m:1", "pending", 5, "user:oA", "t2", 5, ["conv:oA"])
    assert not again.claimed and again.existing == "pending" and not again.locked
    other = store.begin_message("dedup:m:2", "pending", 5, "user:oA", "t3", 5, [])
    assert other.claimed and not other.locked  # the sender's earlier message still holds the lock
    assert store.take_lock("user:oA", "t3", 5) is False


def test_finishing_a_message_writes_everything_and_frees_only_its_own_lock(store):
    store.begin_message("dedup:m:3", "pending", 5, "user:oB", "mine", 5, [])
    store.set("conv:oB", "old")
    store.finish_message([("dedup:m:3", "reply", 5), ("profile:oB", "p", None)], ["conv:oB"],
                         [("msglog", "in"), ("msglog", "out")], ("user:oB", "not mine"))
    assert store.get("dedup:m:3") == "reply" and store.get("profile:oB") == "p" and store.ttl("profile:oB") is None
    assert store.get("conv:oB") is None and store.peek("msglog", 5) == ["in", "out"]
    assert store.take_lock("user:oB", "x", 5) is False  # another token cannot free it
    store.finish_message([], [], [], ("user:oB", "mine"))
    assert store.take_lock("user:oB", "x", 5) is True
    store.unlock("user:oB", "x")
    assert store.take_lock("user:oB", "y", 5) is True
