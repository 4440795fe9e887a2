"""The server opens only files it received as uploads, never a path that a client names.

Gradio's API takes file inputs as FileData objects, `{"path": "...", "meta": {"_type": "gradio.FileData"}}`,
and before any handler runs it copies the named file into its cache (even for events with
`preprocess=False`). Its own check that the path is an upload runs only once the Blocks have been
*launched*, which a Blocks app mounted into another server (`gr.mount_gradio_app`, as the dashboard does)
never is; so a crafted request could make the server read any file it can read.

`UploadGuard` is an ASGI middleware installed on the Gradio app itself (through `app_kwargs`, see
`guard_app_kwargs()`), so it sees every request before Gradio parses it, whether the app is mounted or
launched on its own. For every request with a JSON body (the API's /call/, /run/, /api/, /queue/join,
/component_server, ...) it replaces each file object whose path is not one that *this process's* upload
route produced (Gradio records those in `Blocks.upload_file_set`) with a placeholder that Gradio does not copy
(a static file of ours) and that the handlers answer with `REFUSED_MESSAGE`. The decision is a string
comparison only: a refused path is never opened, copied or even looked up, so a path that exists and one
that does not get the same answer. Uploads themselves (multipart bodies to /upload) pass unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path

REFUSED_NAME = "acmr-refused-upload"
# a static file of ours: Gradio does not copy static files into its cache, and nothing ever reads this one
PLACEHOLDER = Path(__file__).resolve().parent / "static" / REFUSED_NAME
REFUSED_MESSAGE = ("Only uploaded files can be searched, and this is not one this server received; upload the "
                   "image again.")
MAX_JSON_BODY = 48_000_000   # a data URL of the largest image accepted (25 MB) fits; a larger JSON body is refused

_static_registered = False


def register_placeholder() -> None:
    """Declare the placeholder a static file (Gradio then passes it to the handler instead of copying it)."""
    global _static_registered
    if not _static_registered:
        import gradio as gr

        gr.set_static_paths([PLACEHOLDER])
        _static_registered = True


def placeholder_file() -> dict:
    return {"path": str(PLACEHOLDER), "orig_name": REFUSED_NAME, "meta": {"_type": "gradio.FileData"}}


def is_refused(payload) -> bool:
    """Is this a file object the guard replaced?"""
    return isinstance(payload, dict) and (payload.get("path") == str(PLACEHOLDER)
                                          or payload.get("orig_name") == REFUSED_NAME)


def sanitize(data, issued) -> tuple[object, int]:
    """`data` (parsed JSON) with every file object whose path is not in `issued` replaced by the placeholder;
    and how many were replaced. Iterative (no recursion limit to trip on deeply nested input)."""
    root = [data]
    stack = [(root, 0)]
    n = 0
    while stack:
        container, key = stack.pop()
        value = container[key]
        if isinstance(value, dict):
            if isinstance(value.get("path"), str):
                if value["path"] not in issued:
                    container[key] = placeholder_file()
                    n += 1
                continue
            stack.extend((value, k) for k in value)
        elif isinstance(value, list):
            stack.extend((value, i) for i in range(len(value)))
    return root[0], n


def _issued_paths(scope) -> set:
    app = scope.get("app")
    try:
        blocks = app.get_blocks()
    except Exception:  # noqa: BLE001 - no Blocks (yet): nothing was uploaded, so nothing is allowed
        return set()
    return getattr(blocks, "upload_file_set", None) or set()


class UploadGuard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app, max_body: int = MAX_JSON_BODY, endpoints: dict | None = None,
                 file_params: tuple = ()):
        """`endpoints`: {api_name: (parameter names)} of the named endpoints whose calls are checked for the
        number of values (Gradio's own answer to a missing value is an internal error text). A parameter
        named in `file_params` that holds anything but a file object (e.g. a bare path string) is treated
        like a refused file."""
        self.app = app
        self.max_body = max_body
        self.endpoints = dict(endpoints or {})
        self.file_params = set(file_params)
        register_placeholder()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype == b"multipart/form-data":  # uploads (they produce the allowed paths) and editor blobs
            return await self.app(scope, receive, send)

        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await _refuse(send, 413, f"The request is larger than {self.max_body // 1_000_000} MB; "
                                                "send a smaller image (upload it as a file).")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            parsed = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            parsed = None  # not JSON: Gradio refuses it itself, and no file can be named in it
        wrong = self._wrong_arity(scope.get("path", ""), parsed)
        if wrong:
            return await _refuse(send, 400, wrong)
        if parsed is not None:
            parsed, n = sanitize(parsed, _issued_paths(scope))
            n += self._files_only(scope.get("path", ""), parsed)
            if n:
                body = json.dumps(parsed).encode()
                scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                             + [(b"content-length", str(len(body)).encode())])
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


    def _files_only(self, path: str, parsed) -> int:
        """Replace a non-file value of a file parameter of a named endpoint by the placeholder."""
        name = path.rstrip("/").split("/")[-1]
        if name not in self.endpoints or not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
            return 0
        n = 0
        for i, p in enumerate(self.endpoints[name][: len(parsed["data"])]):
            v = parsed["data"][i]
            if p in self.file_params and v is not None and not (isinstance(v, dict) and isinstance(v.get("path"), str)):
                parsed["data"][i] = placeholder_file()
                n += 1
        return n

    def _wrong_arity(self, path: str, parsed) -> str | None:
        parts = path.rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] not in ("call", "run", "api") or parts[-1] not in self.endpoints:
            return None
        name, params = parts[-1], self.endpoints[parts[-1]]
        example = '{"data": [' + ", ".join(f"<{p}>" for p in params) + "]}"
        if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
            return f"/{name} expects a JSON body {example}."
        got = len(parsed["data"])
        if got != len(params):
            missing = ", ".join(params[got:]) if got < len(params) else None
            what = f"{missing} is missing" if missing else f"it got {got} values"
            return (f"/{name} takes {len(params)} values ({', '.join(params)}), but {what}; "
                    f"send {example}.")
        return None


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def guard_app_kwargs(app_kwargs: dict | None = None, endpoints: dict | None = None, file_params: tuple = ()) -> dict:
    """`app_kwargs` for `Blocks.launch()` / `gr.mount_gradio_app()` with the UploadGuard added."""
    from starlette.middleware import Middleware

    kw = dict(app_kwargs or {})
    mw = list(kw.get("middleware") or [])
    if not any(getattr(m, "cls", None) is UploadGuard for m in mw):
        mw.append(Middleware(UploadGuard, endpoints=endpoints, file_params=file_params))
    kw["middleware"] = mw
    return kw


__all__ = ["PLACEHOLDER", "REFUSED_MESSAGE", "UploadGuard", "guard_app_kwargs", "is_refused", "sanitize"]
