"""The floor of bench/webhook.py: a minimal Flask + wechatpy app that checks the signature, parses
the message and echoes a text reply (decrypting and encrypting in safe mode). Nothing else."""
import os

from flask import Flask, request
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature

TOKEN = os.environ["FLOOR_TOKEN"]
MODE = os.environ.get("FLOOR_MODE", "plain")
crypto = WeChatCrypto(TOKEN, os.environ["FLOOR_AES_KEY"], os.environ["FLOOR_APPID"]) if MODE == "safe" else None
app = Flask(__name__)


@app.post("/wechat")
def echo():
    args = request.args
    check_signature(TOKEN, args["signature"], args["timestamp"], args["nonce"])
    body = request.get_data()
    if crypto:
        body = crypto.decrypt_message(body, args["msg_signature"], args["timestamp"], args["nonce"])
    reply = create_reply("echo", parse_message(body)).render()
    return crypto.encrypt_message(reply, args["nonce"]) if crypto else reply
