"""A local HTTP server speaking the OpenAI chat-completions and Anthropic messages protocols, for tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    """Speaks just enough of both protocols. `script` holds (status, headers, body) answers to give first;
    then OpenAI requests get `replies` in turn (`reply_text` once they run out)."""

    def __init__(self, replies: list[str] | None = None) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict, object]] = []
        self.replies = list(replies or [])
        self.reply_text = "hi there"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                if owner.script:
                    status, headers, payload = owner.script.pop(0)
                elif self.path.endswith("/chat/completions"):
                    status, headers = 200, {}
                    payload = {
                        "model": body["model"],
                        "choices": [{"message": {"role": "assistant", "content": owner.next_text()}}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
                    }
                else:
                    status, headers = 200, {}
                    payload = {
                        "model": body["model"],
                        "content": [
                            {"type": "text", "text": "hi "},
                            {"type": "tool_use", "id": "x", "name": "t", "input": {}},
                            {"type": "text", "text": "there"},
                        ],
                        "usage": {"input_tokens": 7, "output_tokens": 2},
                    }
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def next_text(self) -> str:
        return self.replies.pop(0) if self.replies else self.reply_text

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
