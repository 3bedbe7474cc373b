"""OTLP trace export: with `[telemetry] otlp_endpoint`, request spans reach an OTLP/HTTP collector (a stand-in
that records what it receives) as protobuf, with the service name and the operation."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import new_bucket_name


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Collector.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_request_spans_are_exported(trove_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        trove = trove_factory(extra_config=f'[telemetry]\notlp_endpoint = "{endpoint}"\n')
        s3 = trove.client()
        bucket = new_bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"traced")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"traced"
        trove.stop()  # SIGTERM: the exporter flushes what it holds
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not Collector.received:
            time.sleep(0.2)
        assert Collector.received, "no OTLP request arrived"
        paths = {p for p, _, _ in Collector.received}
        assert paths == {"/v1/traces"}, paths
        assert all("protobuf" in ct for _, ct, _ in Collector.received)
        payload = b"".join(body for _, _, body in Collector.received)
        for word in (b"trove", b"request", b"PutObject", b"GetObject"):
            assert word in payload, word
    finally:
        server.shutdown()
