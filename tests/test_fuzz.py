"""Property-based fuzzing of /wechat: random and mutated XML, encodings, query parameters and
encrypted bodies. Whatever arrives: never a 5xx, no exception reaching the error hook, an answer
within a bounded time.

`make test` runs a few hundred cases per property (profile "ci"); `make fuzz` runs 10,000 per
property (profile "nightly", HYPOTHESIS_PROFILE=nightly).
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wxbot.protocol import sign
from wxbot.sandbox.phone import Phone

settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SECONDS_PER_REQUEST = 5.0  # WeChat's own limit: an answer later than this is no answer

MESSAGES = [
    {"MsgType": "text", "Content": "帮助", "MsgId": 1},
    {"MsgType": "text", "Content": "签到 123456", "MsgId": 2},
    {"MsgType": "image", "PicUrl": "http://example.com/a.jpg", "MediaId": "m1", "MsgId": 3},
    {"MsgType": "voice", "MediaId": "m2", "Format": "amr", "Recognition": "学习", "MsgId": 4},
    {"MsgType": "location", "Location_X": "23.1", "Location_Y": "113.3", "Scale": "20", "Label": "图书馆",
     "MsgId": 5},
    {"MsgType": "link", "Title": "t", "Description": "d", "Url": "http://example.com", "MsgId": 6},
    {"MsgType": "event", "Event": "subscribe"},
    {"MsgType": "event", "Event": "unsubscribe"},
    {"MsgType": "event", "Event": "SCAN", "EventKey": "ck:1.2.abcdef012345", "Ticket": "t"},
    {"MsgType": "event", "Event": "SCAN", "EventKey": "ck:1.2.签到码伪造的签名", "Ticket": "t"},
    {"MsgType": "event", "Event": "CLICK", "EventKey": "STUDY_TODAY"},
    {"MsgType": "event", "Event": "LOCATION", "Latitude": "23.1", "Longitude": "113.3", "Precision": "30"},
    {"MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": "7", "Status": "success"},
]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
field_values = st.one_of(text, st.integers(-2**70, 2**70).map(str), st.sampled_from(["", " ", "\x00", "]]>", "<a>"]))


def signed_query(token: str, extra: dict | None = None) -> str:
    timestamp, nonce = str(int(time.time())), "fuzznonce"
    return urlencode({"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                      "openid": "oFuzz", **(extra or {})})


def post(client, query: str, body: bytes, content_type: str = "text/xml"):
    started = time.monotonic()
    response = client.post(f"/wechat?{query}", data=body, content_type=content_type)
    elapsed = time.monotonic() - started
    assert response.status_code < 500, (response.status_code, body[:200])
    assert elapsed < SECONDS_PER_REQUEST, (elapsed, body[:200])
    return response


@pytest.fixture(autouse=True)
def settled_heap():
    """The 5 seconds are the webhook's, not the test process's: late in a full run the process holds
    every app the earlier tests made, and a full garbage collection over that heap can pause a
    request for seconds. Collect first and freeze what is left out of the collector's way while the
    requests are timed."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
def errors(caplog):
    """Nothing may reach the error hook (it logs at ERROR): a crash turned into an apology is still a crash."""
    caplog.set_level(logging.ERROR)
    yield caplog
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures[0].getMessage()


@given(body=st.binary(max_size=2000))
def test_random_bytes_with_a_valid_signature(app, errors, body):
    post(app.test_client(), signed_query(app.config["WXBOT"].wechat.token), body)


@given(message=st.sampled_from(MESSAGES), openid=st.one_of(st.just("oFuzzUser"), text),
       changes=st.dictionaries(st.sampled_from(["Content", "MsgType", "Event", "EventKey", "CreateTime", "MsgId",
                                                "FromUserName", "Latitude", "Location_X", "Recognition", "Status"]),
                               field_values, max_size=4))
def test_messages_with_random_fields(app, errors, message, openid, changes):
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    try:
        query, body = phone.build(openid or "oFuzzUser", {**message, **changes})
    except ValueError:  # xmltodict refuses what no XML can carry (e.g. control characters): WeChat cannot send it
        return
    post(app.test_client(), query, body)


@given(message=st.sampled_from(MESSAGES), cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 400),
                                                                                           st.integers(0, 255)),
                                                                                 max_size=6),
       encoding=st.sampled_from(["utf-8", "gbk", "utf-16", "latin-1"]))
def test_mutated_xml_and_other_encodings(app, errors, message, cut, flips, encoding):
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    query, body = phone.build("oFuzzMutant", message)
    with contextlib.suppress(UnicodeEncodeError):  # kept in UTF-8 when the encoding cannot hold it
        body = body.decode("utf-8").encode(encoding)
    mutated = bytearray(body[: max(cut, 1)] if cut < len(body) else body)
    for position, value in flips:
        if mutated:
            mutated[position % len(mutated)] = value
    post(app.test_client(), query, bytes(mutated))


@given(params=st.dictionaries(st.sampled_from(["signature", "timestamp", "nonce", "openid", "encrypt_type",
                                               "msg_signature", "echostr"]), field_values, max_size=7))
def test_random_query_parameters_are_refused_cleanly(app, errors, params):
    client = app.test_client()
    phone = Phone(app.config["WXBOT"], transport=None, session_factory=None)
    _query, body = phone.build("oFuzzParams", MESSAGES[0])
    response = post(client, urlencode(params), body)
    assert response.status_code in (200, 400, 403, 408, 413)
    assert client.get(f"/wechat?{urlencode(params)}").status_code < 500


@pytest.fixture
def safe_app(make_app):
    return make_app(wechat__encrypt_mode="safe")


@given(encrypt=st.one_of(st.binary(max_size=600).map(lambda b: __import__("base64").b64encode(b).decode()), text),
       appid_swap=st.booleans())
def test_encrypted_bodies_that_do_not_open_are_refused(safe_app, errors, encrypt, appid_swap):
    wechat = safe_app.config["WXBOT"].wechat
    timestamp, nonce = str(int(time.time())), "fuzznonce"
    if appid_swap:  # a genuine envelope for another account's AppID
        from wechatpy.crypto import PrpCrypto

        from wxbot.protocol import aes_key_bytes
        encrypt = PrpCrypto(aes_key_bytes(wechat.aes_key)).encrypt("<xml><MsgType>text</MsgType></xml>",
                                                                   "wxanotheraccount01").decode()
    query = urlencode({"signature": sign(wechat.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                       "encrypt_type": "aes", "msg_signature": sign(wechat.token, timestamp, nonce, encrypt)})
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    response = post(safe_app.test_client(), query, body)
    assert response.status_code in (400, 403)
