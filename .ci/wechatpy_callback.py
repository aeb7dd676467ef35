"""End-to-end, checked by someone else's code: wechatpy (a widely used WeChat/WeCom SDK for
Python, from PyPI) encrypts and signs WeCom callbacks, and a real `siyu serve` must take
them at /callbacks/wecom/{id}: the URL check answered with the echo, an
add_external_contact event answered `success`, taken once and applied in bulk, its welcome one `wecom.callback` job
however often it is sent, a forged signature refused.

Run by .ci/run after installing wechatpy (wechatpy-requirements.txt beside this file):

    python .ci/wechatpy_callback.py target/debug/siyu

It prints one line per check and closes with "N passed, N failed".
"""

import base64
import json
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from wechatpy.enterprise.crypto import WeChatCrypto

SIYU = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/siyu")
CORP_ID = "wwc1a2b3c4d5e6f7a8"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"), flush=True)


def siyu(*args, db):
    out = subprocess.run([SIYU, *args, "--database-url", db], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, headers=None):
    """(status, body as text)."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def api(base, method, path, token, body=None):
    status, text = call(base, method, path, None if body is None else json.dumps(body),
                        {"authorization": f"Bearer {token}", "content-type": "application/json"})
    if status >= 300:
        raise SystemExit(f"{method} {path} answered {status}: {text}")
    return json.loads(text)


def sealed(crypto, plaintext, nonce, timestamp):
    """What wechatpy makes of a plaintext: (Encrypt, MsgSignature, its message XML)."""
    message = crypto.encrypt_message(plaintext, nonce, timestamp)
    reply = ET.fromstring(message)
    return reply.findtext("Encrypt"), reply.findtext("MsgSignature"), message


def event_xml(change_type, create_time, **fields):
    """A change_external_contact event as WeCom writes it for a self-built app."""
    cdata = lambda v: f"<![CDATA[{v}]]>"  # noqa: E731
    parts = [f"<ToUserName>{cdata(CORP_ID)}</ToUserName>", f"<FromUserName>{cdata('sys')}</FromUserName>",
             f"<CreateTime>{create_time}</CreateTime>", f"<MsgType>{cdata('event')}</MsgType>",
             f"<Event>{cdata('change_external_contact')}</Event>", f"<ChangeType>{cdata(change_type)}</ChangeType>"]
    parts += [f"<{name}>{cdata(value)}</{name}>" for name, value in fields.items()]
    return "<xml>" + "".join(parts) + "</xml>"


def post_event(base, path, crypto, plaintext, with_envelope=True):
    """POSTs an event as WeCom does: signature in the query, encrypted text in the body."""
    timestamp, nonce = str(int(time.time())), str(random.randrange(10**9))
    encrypted, signature, message = sealed(crypto, plaintext, nonce, timestamp)
    if with_envelope:
        body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>")
    else:
        # wechatpy's own message form: no ToUserName (WeCom's docs: it may be absent)
        body = message
    query = urllib.parse.urlencode({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
    return call(base, "POST", f"{path}?{query}", body, {"content-type": "text/xml; charset=utf-8"})


def main():
    token_chars = string.ascii_letters + string.digits
    callback_token = "".join(random.choice(token_chars) for _ in range(32))
    aes_key = base64.b64encode(os.urandom(32)).decode().rstrip("=")  # 43 characters
    crypto = WeChatCrypto(callback_token, aes_key, CORP_ID)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite://{tmp}/wecom.db"
        siyu("tenant", "create", "wecom", "--admin-email", "admin@wecom.example.com",
             "--admin-password", "wecom-password-1", db=db)
        token = siyu("token", "create", "--tenant", "wecom", "--role", "admin", db=db)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([SIYU, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", db],
                                  env={**os.environ, "RUST_LOG": "warn"})
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            connector = api(base, "POST", "/api/v1/connectors", token, {
                "kind": "wecom", "name": "企业微信", "config": {
                    "corp_id": CORP_ID, "secret": "app-secret", "token": callback_token,
                    "encoding_aes_key": aes_key,
                    # nothing listens there: this check makes no call to WeCom
                    "api_base_url": "http://127.0.0.1:9"}})
            path = connector["callback_path"]

            # the URL check WeCom makes when the URL is saved
            echo = str(random.randrange(10**18, 10**19))
            timestamp, nonce = str(int(time.time())), "1597212914"
            echostr, signature, _ = sealed(crypto, echo, nonce, timestamp)
            check("wechatpy opens its own echostr", crypto.check_signature(signature, timestamp, nonce, echostr) == echo)
            query = urllib.parse.urlencode({"msg_signature": signature, "timestamp": timestamp,
                                            "nonce": nonce, "echostr": echostr})
            status, text = call(base, "GET", f"{path}?{query}")
            check("the URL check answers the echo", (status, text) == (200, echo), (status, text))
            forged = urllib.parse.urlencode({"msg_signature": "0" * 40, "timestamp": timestamp,
                                             "nonce": nonce, "echostr": echostr})
            status, text = call(base, "GET", f"{path}?{forged}")
            check("a URL check with a forged signature is refused", status == 401, (status, text))

            # a customer adds a member
            added = event_xml("add_external_contact", int(time.time()), UserID="zhangsan",
                              ExternalUserID="wmAbCdEf0123456789", State="spring-2026",
                              WelcomeCode="WELCOMECODE0123456789")
            status, text = post_event(base, path, crypto, added)
            check("the add_external_contact event is answered success", (status, text) == (200, "success"),
                  (status, text))
            # WeCom sends it again (encrypted afresh, another nonce): answered, not taken twice
            status, text = post_event(base, path, crypto, added)
            check("the event sent again is answered success", (status, text) == (200, "success"), (status, text))
            # taken for the bulk job, whose welcome follow-up (a wecom.callback job) holds it
            jobs = []
            for _ in range(100):
                jobs = api(base, "GET", "/api/v1/jobs?kind=wecom.callback", token)["items"]
                if jobs:
                    break
                time.sleep(0.1)
            check("one wecom.callback job holds the event",
                  len(jobs) == 1 and jobs[0]["payload"]["event"].get("ExternalUserID") == "wmAbCdEf0123456789"
                  and jobs[0]["payload"]["event"].get("State") == "spring-2026"
                  and jobs[0]["payload"]["connector_id"] == connector["id"], jobs)

            # another event, in wechatpy's own envelope
            deleted = event_xml("del_follow_user", int(time.time()), UserID="zhangsan",
                                ExternalUserID="wmAbCdEf0123456789")
            status, text = post_event(base, path, crypto, deleted, with_envelope=False)
            check("a del_follow_user event is answered success", (status, text) == (200, "success"), (status, text))

            # the same event signed with another token
            other_token = ("A" if callback_token[0] != "A" else "B") + callback_token[1:]
            stranger = WeChatCrypto(other_token, aes_key, CORP_ID)
            status, text = post_event(base, path, stranger, event_xml("del_external_contact", 1, UserID="u"))
            check("an event with a forged signature is refused", status == 401, (status, text))
            # the deletion is applied in bulk too: no job of its own, and the forged one none
            bulk = []
            for _ in range(100):
                bulk = api(base, "GET", "/api/v1/jobs?kind=wecom.relation_changes", token)["items"]
                if bulk and all(j["state"] not in ("waiting", "running") for j in bulk):
                    break
                time.sleep(0.1)
            check("the adds and deletions were applied in bulk", bulk and all(j["state"] == "done" for j in bulk),
                  [j["state"] for j in bulk])
            jobs = api(base, "GET", "/api/v1/jobs?kind=wecom.callback", token)["items"]
            check("one wecom.callback job in all", len(jobs) == 1,
                  [j["payload"]["event"].get("ChangeType") for j in jobs])
        finally:
            server.terminate()
            server.wait(timeout=20)

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
