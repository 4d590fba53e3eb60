"""WeChat's message protocol: signatures, the timestamp window, safe XML, (de)cryption.

Built on wechatpy (WeChatSigner, PrpCrypto, parse_message, WeChatCrypto); what we add is that every
signature is compared in constant time, stale timestamps are refused and DTDs are never parsed.
"""
from __future__ import annotations

import base64
import functools
import hmac
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.messages import BaseMessage
from wechatpy.utils import WeChatSigner, random_string


class Refused(Exception):
    """The request is refused with an HTTP status and a short reason (never shown to users)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 of the parts sorted and joined."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def check_signature(token: str, args: Mapping[str, str]) -> None:
    """Refuse (403) unless `signature` signs token, timestamp and nonce."""
    expected = sign(token, args.get("timestamp", ""), args.get("nonce", ""))
    if not hmac.compare_digest(expected.encode(), args.get("signature", "").encode()):  # bytes: any text compares
        raise Refused(403, "bad signature")


def check_timestamp(args: Mapping[str, str], window: int, now: float | None = None) -> None:
    """Refuse (403) a request whose timestamp is outside the window: a replay or a wrong clock."""
    raw = args.get("timestamp", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise Refused(403, "bad timestamp")
    stamp = int(raw)
    if abs((now or time.time()) - stamp) > window:
        raise Refused(403, "stale timestamp")


def read_xml(body: bytes) -> ET.Element:
    """Parse a body as XML with DTDs and entities forbidden; 400 when it is not that."""
    try:
        return safe_fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        raise Refused(400, f"malformed xml ({exc.__class__.__name__})") from None


@dataclass
class Envelope:
    """The inner message XML, and whether the reply must be encrypted."""

    xml: str
    encrypted: bool


def open_envelope(body: bytes, args: Mapping[str, str], wechat) -> Envelope:
    """Unwrap a POST body as the configured encryption mode allows."""
    root = read_xml(body)
    encrypted = args.get("encrypt_type") == "aes"
    if not encrypted:
        if wechat.encrypt_mode == "safe":
            raise Refused(400, "plaintext refused in safe mode")
        check_shape(root)
        return Envelope(_utf8(body), False)
    if wechat.encrypt_mode == "plain":
        raise Refused(400, "encryption is not configured")
    cipher_text = root.findtext("Encrypt") or ""
    expected = sign(wechat.token, args.get("timestamp", ""), args.get("nonce", ""), cipher_text)
    if not hmac.compare_digest(expected.encode(), args.get("msg_signature", "").encode()):
        raise Refused(403, "bad msg_signature")
    return Envelope(decrypt(cipher_text, wechat), True)


def decrypt(cipher_text: str, wechat) -> str:
    """Decrypt an <Encrypt> payload; a wrong AppID or bad data is a 400."""
    try:
        plain = prp_crypto(wechat.aes_key).decrypt(cipher_text, wechat.appid)
    except InvalidAppIdException:
        raise Refused(400, "wrong appid") from None
    except (ValueError, IndexError, struct.error, UnicodeDecodeError):
        raise Refused(400, "undecryptable payload") from None
    check_shape(read_xml(plain.encode("utf-8")))
    return plain


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not utf-8") from None


# Fields every message has, and those the router reads: each must appear once, as plain text.
REQUIRED_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
LEAF_FIELDS = REQUIRED_FIELDS + ("Event", "EventKey", "Content", "MsgId", "MsgID", "Recognition", "Ticket")


def check_shape(root: ET.Element) -> None:
    """Refuse (400) a message that is not in WeChat's shape: a field the router reads missing,
    doubled or not plain text, an empty MsgType or Event, a CreateTime that is not a time."""
    if root.tag != "xml":
        raise Refused(400, "root is not <xml>")
    for name in LEAF_FIELDS:
        found = root.findall(name)
        if len(found) > 1 or any(len(element) for element in found):
            raise Refused(400, f"{name} doubled or nested")
    for name in REQUIRED_FIELDS:
        if not (root.findtext(name) or "").strip():
            raise Refused(400, f"{name} missing")
    created = root.findtext("CreateTime").strip()
    if not (created.isascii() and created.isdigit() and len(created) <= 12):
        raise Refused(400, "bad CreateTime")
    if root.findtext("MsgType").strip().lower() == "event" and not (root.findtext("Event") or "").strip():
        raise Refused(400, "event without Event")


def aes_key_bytes(aes_key: str) -> bytes:
    return base64.b64decode(aes_key + "=")


@functools.lru_cache(maxsize=4)
def prp_crypto(aes_key: str) -> PrpCrypto:
    """One cipher per key (each call makes its own encryptor or decryptor, so threads may share it)."""
    return PrpCrypto(aes_key_bytes(aes_key))


@functools.lru_cache(maxsize=4)
def wechat_crypto(token: str, aes_key: str, appid: str) -> WeChatCrypto:
    return WeChatCrypto(token, aes_key, appid)


def parse(xml: str) -> BaseMessage:
    """A typed wechatpy message; 400 when required fields are missing."""
    try:
        message = parse_message(xml)
        if message is not None:  # wechatpy converts fields when read: a bad MsgId or time is refused here
            _ = (message.id if message.type != "event" else None, message.time, message.create_time)
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise Refused(400, f"not a wechat message ({exc.__class__.__name__})") from None
    if message is None or not isinstance(message.source, str) or not message.source:
        raise Refused(400, "not a wechat message")
    return message


def seal(reply_xml: str, envelope: Envelope, wechat, nonce: str) -> str:
    """Encrypt a reply when the request was encrypted; `success` stays bare."""
    if not envelope.encrypted or reply_xml == "success":
        return reply_xml
    crypto = wechat_crypto(wechat.token, wechat.aes_key, wechat.appid)
    return crypto.encrypt_message(reply_xml, nonce or random_string(10), str(int(time.time())))
