"""The outbound client: one shared access token, one renewal and one retry on token errors only."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from wechatpy.exceptions import WeChatClientException

from models.sandbox import SandboxToken
from wxbot.client import SharedTokenClient
from wxbot.config import api_base
from wxbot.outbound import wechat_client


def tokens_issued(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(SandboxToken))


def another_process_client(app) -> SharedTokenClient:
    """A second client on the same store, as another gunicorn worker would have."""
    cfg = app.config["WXBOT"]
    return SharedTokenClient(cfg.wechat.appid, cfg.sandbox.secret, api_base(cfg), app.extensions["wxbot.store"],
                             5, cfg.wechat.token_refresh_margin)


def faults(app, **body):
    assert app.test_client().post("/sandbox/faults", json=body).status_code == 200


@pytest.fixture
def talking_user(user):
    user.say("帮助")  # opens the customer-service window: 5 messages for 48 h
    return user


def test_one_token_serves_every_process(app, session, talking_user):
    with app.app_context():
        wechat_client().message.send_text(talking_user.openid, "一")
    another_process_client(app).message.send_text(talking_user.openid, "二")
    assert tokens_issued(session) == 1
    assert [m["content"] for m in talking_user.received(session, "customer_service")] == ["一", "二"]


def test_concurrent_first_calls_fetch_one_token(app, session):
    clients = [another_process_client(app) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda c: c.access_token, clients))
    assert len(tokens) == 1 and tokens_issued(session) == 1


def test_an_expired_token_is_renewed_once_and_the_call_succeeds(app, session, talking_user):
    client = another_process_client(app)
    client.message.send_text(talking_user.openid, "之前")
    faults(app, expire_tokens=True)
    client.message.send_text(talking_user.openid, "之后")
    assert tokens_issued(session) == 2
    assert talking_user.received(session, "customer_service")[-1]["content"] == "之后"


def test_a_token_refused_twice_raises_after_one_retry_never_looping(app, session, talking_user):
    client = another_process_client(app)
    _ = client.access_token
    faults(app, inject={"message/custom/send": [40001, 40001]})
    with pytest.raises(WeChatClientException) as error:
        client.message.send_text(talking_user.openid, "x")
    assert error.value.errcode == 40001 and tokens_issued(session) == 2
    client.message.send_text(talking_user.openid, "恢复")  # exactly two answers were used: call + one retry
    assert [m["content"] for m in talking_user.received(session, "customer_service")] == ["恢复"]


def test_other_error_codes_are_raised_without_renewing(app, session, talking_user):
    client = another_process_client(app)
    _ = client.access_token
    faults(app, inject={"message/custom/send": [45009]})
    with pytest.raises(WeChatClientException) as error:
        client.message.send_text(talking_user.openid, "x")
    assert error.value.errcode == 45009 and tokens_issued(session) == 1
    client.message.send_text(talking_user.openid, "配额恢复后")
    assert talking_user.received(session, "customer_service")[-1]["content"] == "配额恢复后"


def test_a_wrong_secret_is_a_clear_error(app):
    cfg = app.config["WXBOT"]
    client = SharedTokenClient(cfg.wechat.appid, "wrong", api_base(cfg), app.extensions["wxbot.store"], 5, 300)
    with pytest.raises(WeChatClientException) as error:
        _ = client.access_token
    assert error.value.errcode == 40125
