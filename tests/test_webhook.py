"""/wechat refuses what is forged, stale, too large or malformed, and speaks all three modes."""
import time
from urllib.parse import urlencode

import pytest
from wechatpy.crypto import PrpCrypto

from tests.conftest import phone_for
from tests.helpers import ChatUser
from wxbot.protocol import aes_key_bytes, sign

OPENID = "oWebhookUser0000000000000001"
TEXT = "<xml><ToUserName>gh</ToUserName><FromUserName>{o}</FromUserName><CreateTime>{t}</CreateTime>" \
       "<MsgType>text</MsgType><Content>帮助</Content><MsgId>{m}</MsgId></xml>"


def signed_query(token="wxbotsandboxtoken", timestamp=None, **extra):
    timestamp = str(timestamp or int(time.time()))
    return urlencode({"signature": sign(token, timestamp, "n1"), "timestamp": timestamp, "nonce": "n1", **extra})


def post(app, body, query=None):
    query = signed_query() if query is None else query
    return app.test_client().post(f"/wechat?{query}", data=body, content_type="text/xml")


def text_body(msg_id=1):
    return TEXT.format(o=OPENID, t=int(time.time()), m=msg_id).encode()


def test_url_verification_echoes_echostr_only_when_signed(app):
    client = app.test_client()
    assert client.get(f"/wechat?{signed_query(echostr='hello123')}").get_data(as_text=True) == "hello123"
    assert client.get(f"/wechat?{signed_query(token='forged', echostr='hello123')}").status_code == 403


def test_a_signed_plaintext_message_gets_a_reply(app):
    response = post(app, text_body())
    assert response.status_code == 200 and "<Content><![CDATA[" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    lambda: signed_query(token="forged"),
    lambda: signed_query(timestamp=int(time.time()) - 301),
    lambda: signed_query(timestamp=int(time.time()) + 301),
    lambda: "timestamp=abc&nonce=n1&signature=x",
    lambda: "",
])
def test_forged_or_stale_requests_are_refused_before_parsing(app, query):
    assert post(app, b"not even xml", query()).status_code == 403


def test_the_timestamp_window_is_a_setting(make_app):
    app = make_app(wechat__timestamp_window=10)
    assert post(app, text_body(), signed_query(timestamp=int(time.time()) - 60)).status_code == 403


def test_a_body_over_64_kib_is_refused_with_413(app):
    assert post(app, b"<xml>" + b"a" * 70000 + b"</xml>").status_code == 413


@pytest.mark.parametrize("body", [
    b"not xml at all",
    b"<xml><unclosed></xml>",
    b'{"json": true}',
    b"",
    b"<xml><FromUserName>o</FromUserName></xml>",
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "boom">]><xml><ToUserName>&x;</ToUserName></xml>',
    b'<!DOCTYPE xml SYSTEM "http://example.org/evil.dtd"><xml/>',
    "<xml><ToUserName>gh</ToUserName>\udcff</xml>".encode("utf-8", "surrogatepass"),
])
def test_malformed_bodies_get_400_never_500(app, body):
    response = post(app, body)
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def _encrypted(app, xml: str, appid=None, encrypt=None):
    wechat = app.config["WXBOT"].wechat
    cipher = encrypt or PrpCrypto(aes_key_bytes(wechat.aes_key)).encrypt(xml, appid or wechat.appid).decode()
    timestamp = str(int(time.time()))
    query = urlencode({"signature": sign(wechat.token, timestamp, "n1"), "timestamp": timestamp, "nonce": "n1",
                       "encrypt_type": "aes", "msg_signature": sign(wechat.token, timestamp, "n1", cipher)})
    return post(app, f"<xml><ToUserName>gh</ToUserName><Encrypt>{cipher}</Encrypt></xml>".encode(), query)


def test_a_wrong_appid_inside_the_ciphertext_is_refused(make_app):
    app = make_app(wechat__encrypt_mode="safe")
    assert _encrypted(app, text_body().decode(), appid="wxSomeoneElse").status_code == 400


def test_bad_base64_or_garbage_ciphertext_is_refused(make_app):
    app = make_app(wechat__encrypt_mode="safe")
    assert _encrypted(app, "", encrypt="!!!not-base64!!!").status_code == 400
    assert _encrypted(app, "", encrypt="QUJDRA==").status_code == 400


def test_a_forged_msg_signature_is_refused(make_app):
    app = make_app(wechat__encrypt_mode="safe")
    wechat = app.config["WXBOT"].wechat
    cipher = PrpCrypto(aes_key_bytes(wechat.aes_key)).encrypt(text_body().decode(), wechat.appid).decode()
    query = signed_query(encrypt_type="aes", msg_signature="0" * 40)
    assert post(app, f"<xml><Encrypt>{cipher}</Encrypt></xml>".encode(), query).status_code == 403


def test_safe_mode_refuses_plaintext(make_app):
    app = make_app(wechat__encrypt_mode="safe")
    assert post(app, text_body()).status_code == 400


@pytest.mark.parametrize("mode", ["safe", "compatible"])
def test_encrypted_conversations_work_and_replies_come_back_encrypted(make_app, mode):
    app = make_app(wechat__encrypt_mode=mode)
    user = ChatUser(phone_for(app), "oEncryptedUser")
    assert "欢迎关注" in user.follow()
    assert "绑定 学号 姓名" in user.say("帮助")
    assert "<Encrypt>" in user.last.raw and "帮助" not in user.last.raw


def test_compatible_mode_also_accepts_plaintext(make_app):
    app = make_app(wechat__encrypt_mode="compatible")
    assert post(app, text_body()).status_code == 200


def test_plain_mode_refuses_an_encrypted_request(app):
    assert _encrypted(app, text_body().decode()).status_code == 400


def test_random_signed_garbage_never_produces_a_500(app):
    import random
    rng = random.Random(7)
    pieces = [b"<xml>", b"</xml>", b"<MsgType>", b"text", b"event", b"</MsgType>", b"<Event>", b"</Event>",
              b"<FromUserName>o</FromUserName>", b"<MsgId>x</MsgId>", b"<CreateTime>1</CreateTime>", b"&amp;",
              b"<![CDATA[", b"]]>", b"\x00", b"\xff", b"<Content>", b"</Content>"]
    for _ in range(200):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert post(app, body).status_code in (200, 400)
