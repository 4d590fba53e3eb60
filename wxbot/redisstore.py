"""The Redis store of production: every key carries the deployment's prefix; the steps that must be
one (a message's first and last round trips, a take-over, a conditional delete) are Lua scripts."""
from __future__ import annotations

import redis

from wxbot.store import Begun, Store

# KEYS: claim, lock; ARGV: the stale claim, the dead holder's lock token.
TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

# Free a lock only for the token that holds it; delete a key only while it holds the value.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: claim, lock, reads...; ARGV: pending, claim ttl ms, token, lock ttl ms.
# Returns {0, what is stored} when the message was claimed before, else {1, locked, reads...}
# (a missing key reads as false, which reaches Python as None).
BEGIN = """
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local reply = {1, redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) and 1 or 0}
for i = 3, #KEYS do reply[i] = redis.call('GET', KEYS[i]) end
return reply
"""

# KEYS: the keys to set, to delete, the lists to push to, then the lock (if any).
# ARGV: counts of sets, deletes, pushes; the values to set; their ttls (ms, 0 for none);
# the values to push; the lock's token (if any).
FINISH = """
local sets, dels, pushes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, sets do
  local ttl = tonumber(ARGV[3 + sets + i])
  if ttl > 0 then redis.call('SET', KEYS[i], ARGV[3 + i], 'PX', ttl) else redis.call('SET', KEYS[i], ARGV[3 + i]) end
end
for i = 1, dels do redis.call('DEL', KEYS[sets + i]) end
for i = 1, pushes do redis.call('RPUSH', KEYS[sets + dels + i], ARGV[3 + 2 * sets + i]) end
local lock = sets + dels + pushes + 1
if KEYS[lock] and redis.call('GET', KEYS[lock]) == ARGV[3 + 2 * sets + pushes + 1] then
  redis.call('DEL', KEYS[lock])
end
"""


class RedisStore(Store):
    """Redis backend; every key carries the deployment prefix."""

    def __init__(self, url: str, prefix: str):
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                          socket_connect_timeout=2, health_check_interval=30)
        self.prefix = prefix.rstrip(":") + ":"
        self._unlock = self.redis.register_script(UNLOCK)
        self._begin = self.redis.register_script(BEGIN)
        self._finish = self.redis.register_script(FINISH)
        self._take_over = self.redis.register_script(TAKE_OVER)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key):
        return self.redis.get(self._k(key))

    def set(self, key, value, ttl=None):
        self.redis.set(self._k(key), value, px=int(ttl * 1000) if ttl else None)

    def add(self, key, value, ttl):
        return bool(self.redis.set(self._k(key), value, px=int(ttl * 1000), nx=True))

    def delete(self, *keys):
        if keys:
            self.redis.delete(*(self._k(k) for k in keys))

    def incr(self, key, ttl):
        pipe = self.redis.pipeline()
        pipe.incr(self._k(key))
        pipe.pexpire(self._k(key), int(ttl * 1000), nx=True)
        return int(pipe.execute()[0])

    def ttl(self, key):
        millis = self.redis.pttl(self._k(key))
        return None if millis < 0 else millis / 1000.0

    def delete_if(self, key, value):
        return bool(self._unlock(keys=[self._k(key)], args=[value]))

    def take_lock(self, name, token, timeout):
        return bool(self.redis.set(self._k(f"lock:{name}"), token, px=int(timeout * 1000), nx=True))

    def unlock(self, name, token):
        self._unlock(keys=[self._k(f"lock:{name}")], args=[token])

    def begin_message(self, claim, pending, claim_ttl, lock, token, lock_ttl, reads):
        reply = self._begin(keys=[self._k(claim), self._k(f"lock:{lock}"), *(self._k(k) for k in reads)],
                            args=[pending, int(claim_ttl * 1000), token, int(lock_ttl * 1000)])
        if not reply[0]:
            return Begun(False, reply[1])
        return Begun(True, None, bool(reply[1]), tuple(reply[2:]))

    def take_over(self, claim, stale, lock, token):
        return bool(self._take_over(keys=[self._k(claim), self._k(f"lock:{lock}")], args=[stale, token]))

    def finish_message(self, sets, deletes, pushes, unlock):
        keys = [self._k(k) for k, _v, _t in sets] + [self._k(k) for k in deletes] + [self._k(k) for k, _v in pushes]
        args = [len(sets), len(deletes), len(pushes)]
        args += [v for _k, v, _t in sets] + [int(t * 1000) if t else 0 for _k, _v, t in sets]
        args += [v for _k, v in pushes]
        if unlock is not None:
            keys.append(self._k(f"lock:{unlock[0]}"))
            args.append(unlock[1])
        self._finish(keys=keys, args=args)

    def push(self, key, *values):
        if values:
            self.redis.rpush(self._k(key), *values)

    def peek(self, key, count):
        return self.redis.lrange(self._k(key), 0, count - 1) if count > 0 else []

    def trim(self, key, count):
        if count > 0:
            self.redis.ltrim(self._k(key), count, -1)

    def ping(self):
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def clear(self):
        cursor = 0
        while True:
            cursor, keys = self.redis.scan(cursor, match=self.prefix + "*", count=500)
            if keys:
                self.redis.delete(*keys)
            if cursor == 0:
                return
