"""End-to-end: the official Segment and RudderStack Python SDKs, unchanged, send to a
real `siyu serve`, and what they sent is found on the customer profiles.

Run by .ci/run after installing the SDKs from PyPI (requirements.txt beside this file):

    python tests/sdk/sdk_test.py target/debug/siyu

It prints one line per check and closes with "N passed, N failed".
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

SIYU = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/siyu")
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


def get(base, path, token):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main():
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite://{tmp}/sdk.db"
        siyu("tenant", "create", "sdk", "--admin-email", "admin@sdk.example.com",
             "--admin-password", "sdk-password-1", db=db)
        write_key = siyu("source", "create", "--tenant", "sdk", "--name", "python", "--kind", "server", db=db)
        token = siyu("token", "create", "--tenant", "sdk", "--role", "admin", db=db)
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

            errors = []
            on_error = lambda error, batch: errors.append(str(error))  # noqa: E731

            # Segment: sync mode sends each call at once (a one-item batch)
            segment = SegmentClient(write_key, host=base, sync_mode=True, on_error=on_error)
            segment.identify("sdk-user-1", {"name": "李娜", "email": "Li.Na@Brand.cn", "city": "上海"},
                             anonymous_id="device-1")
            segment.track("sdk-user-1", "Order Completed",
                          {"order_id": "o-1", "total": 128.5, "currency": "CNY"})
            segment.page("sdk-user-1", "shop", "商品详情", {"path": "/products/tea-01"})
            # async mode batches and gzips on request
            batching = SegmentClient(write_key, host=base, gzip=True, on_error=on_error)
            for i in range(25):
                batching.track(f"sdk-user-{i % 5}", "Product Viewed", {"sku": f"TEA-{i:02d}"})
            batching.flush()
            batching.join()

            # RudderStack: gzip by default, identify traits only in context.traits
            rudder = RudderClient(write_key, host=base, sync_mode=True, on_error=on_error)
            rudder.identify("rudder-user-1", {"name": "王芳", "phone": "13812341680"})
            rudder.track("rudder-user-1", "Coupon Claimed", {"coupon": "AUTUMN10"})

            check("no SDK reported an error", not errors, errors)

            # siyu answers once events are in its ingest log; profiles follow within moments
            for _ in range(200):
                if get(base, "/api/v1/sources", token)["items"][0]["received"] >= 30:
                    break
                time.sleep(0.05)

            profile = get(base, "/api/v1/customers/lookup?kind=user_id&value=sdk-user-1", token)
            check("Segment identify traits are on the profile", profile.get("name") == "李娜", profile)
            check("the email identity is normalised and masked", profile.get("email") == "l***@brand.cn", profile)
            same = get(base, "/api/v1/customers/lookup?kind=anonymous_id&value=device-1", token)
            check("the anonymous id names the same profile", same["id"] == profile["id"], same)
            timeline = get(base, f"/api/v1/customers/{profile['id']}/timeline?limit=100", token)
            names = [e["name"] for e in timeline["items"] if e["kind"] == "event"]
            check("Segment track and page are on the timeline",
                  "Order Completed" in names and "商品详情" in names, names)
            check("the batched, gzipped calls arrived", names.count("Product Viewed") == 5, names)
            check("the Order Completed event became an order",
                  profile["orders"]["count"] == 1 and profile["orders"]["total"] == 128.5
                  and any(e["kind"] == "order" and e["order_id"] == "o-1" for e in timeline["items"]),
                  profile["orders"])

            rudder_profile = get(base, "/api/v1/customers/lookup?kind=user_id&value=rudder-user-1", token)
            check("RudderStack traits from context.traits are on the profile",
                  rudder_profile.get("name") == "王芳" and rudder_profile.get("phone") == "138****1680",
                  rudder_profile)
            rudder_timeline = get(base, f"/api/v1/customers/{rudder_profile['id']}/timeline", token)
            check("RudderStack track is on the timeline",
                  [e["name"] for e in rudder_timeline["items"] if e["kind"] == "event"][0] == "Coupon Claimed",
                  rudder_timeline)

            sources = get(base, "/api/v1/sources", token)["items"]
            check("the source counted every event", sources[0]["received"] == 30, sources)
        finally:
            server.terminate()
            server.wait(timeout=20)

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
