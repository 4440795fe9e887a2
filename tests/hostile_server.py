"""Helpers for the hostile-input tests that talk to a real running server with raw HTTP payloads.

`start_dashboard()` starts `streamlit run app/main.py` (Gradio mounted at /gradio inside Streamlit) and
`start_standalone()` starts `python -m app.search` (then `wait_ready()`), each on a free loopback port, with its own Gradio cache
folder (GRADIO_TEMP_DIR) so a test can see what the server copied there.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    kind: str
    root: str            # http://127.0.0.1:PORT/
    api: str             # .../gradio_api  (the Gradio app's API prefix)
    gradio_cache: Path   # GRADIO_TEMP_DIR of the server process
    log: Path
    proc: subprocess.Popen

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""


def _env(tmp: Path, checkpoints: Path) -> dict:
    return dict(os.environ, ACMR_CHECKPOINTS_DIR=str(checkpoints), ACMR_PREFETCH="0",
                ACMR_CACHE_DIR=str(tmp / "acmr-cache"), GRADIO_TEMP_DIR=str(tmp / "gradio-cache"),
                GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
                PYTHONUNBUFFERED="1")


def wait_ready(server: Server, timeout: float = 180) -> Server:
    """Wait until the server answers (its Gradio config), or raise with the end of its log."""
    ready_url = server.root + ("gradio/config" if server.kind == "dashboard" else "config")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not server.alive():
            raise RuntimeError(f"the {server.kind} server exited at start:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(server)
    raise RuntimeError(f"the {server.kind} server did not answer within {timeout:.0f} s:\n{server.log_text()[-3000:]}")


def start_dashboard(tmp: Path, checkpoints: Path) -> Server:
    port = free_port()
    log = tmp / "dashboard.log"
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=_env(tmp, checkpoints), stdout=log.open("w"), stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}/"
    return Server("dashboard", root, root + "gradio/gradio_api", tmp / "gradio-cache", log, proc)


def start_standalone(tmp: Path, checkpoints: Path, checkpoint: Path) -> Server:
    port = free_port()
    log = tmp / "standalone.log"
    proc = subprocess.Popen([sys.executable, "-m", "app.search", "--port", str(port), "--checkpoint", str(checkpoint)],
                            cwd=ROOT, env=_env(tmp, checkpoints), stdout=log.open("w"), stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}/"
    return Server("standalone", root, root + "gradio_api", tmp / "gradio-cache", log, proc)


def stop(server: Server, wait: float = 15) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(wait)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)


def sse_events(text: str) -> list[tuple[str, object]]:
    """(event, data) pairs of a server-sent-events body."""
    out = []
    for block in text.split("\n\n"):
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if event or data:
            raw = "\n".join(data)
            try:
                value = json.loads(raw) if raw else None
            except ValueError:
                value = raw
            out.append((event, value))
    return out


@dataclass
class Answer:
    status: int          # HTTP status of the POST
    event: str | None    # 'complete' / 'error' (the SSE event), None when the POST itself was refused
    data: object         # the results, or the error object
    raw: str             # everything the client received, to check for traceback text

    @property
    def message(self) -> str:
        if isinstance(self.data, dict):
            return str(self.data.get("error"))
        return str(self.data)


def call(server: Server, api_name: str, body, timeout: float = 90) -> Answer:
    """POST /call/<api_name> with a raw JSON body (any JSON value), then read the result stream."""
    r = httpx.post(f"{server.api}/call/{api_name}", content=json.dumps(body).encode() if not isinstance(body, bytes)
                   else body, headers={"content-type": "application/json"}, timeout=timeout)
    if r.status_code != 200:
        try:
            data = r.json()
        except ValueError:
            data = r.text
        return Answer(r.status_code, None, data, r.text)
    event_id = r.json()["event_id"]
    r2 = httpx.get(f"{server.api}/call/{api_name}/{event_id}", timeout=timeout)
    events = [e for e in sse_events(r2.text) if e[0] not in ("heartbeat", None)]
    event, data = events[-1] if events else (None, None)
    if event == "complete" and isinstance(data, list) and len(data) == 1:
        data = data[0]
    return Answer(200, event, data, r.text + r2.text)


def upload(server: Server, path: Path) -> str:
    """Upload a file through the server's own upload route; the path it returns."""
    with open(path, "rb") as f:
        r = httpx.post(f"{server.api}/upload", files=[("files", (path.name, f, "application/octet-stream"))],
                       timeout=60)
    r.raise_for_status()
    return r.json()[0]


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def healthy(server: Server) -> bool:
    """The process is alive and still answers a good text query."""
    if not server.alive():
        return False
    a = call(server, "search_by_text", {"data": ["a red star", 3]})
    return a.event == "complete" and len(a.data["results"]) == 3


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
