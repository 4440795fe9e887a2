"""ACMR Lab: one process, one port. `streamlit run app/main.py` (from the project root) serves

  /            the Streamlit dashboard (app/dashboard.py): train ACMR live, watch it learn, maps, export
  /gradio/     the Gradio search app (app/search.py), shown inside the dashboard's Search tab
  /healthz     a small JSON health check (Streamlit's own is /_stcore/health)
  /acmr/thumb/ small PNGs of the raw images shown in the maps (hover thumbnails)
  /acmr/plotly.min.js  plotly.js from the plotly package, for the live charts (app/live_chart.py)

Streamlit detects the `st.App` below and runs it with uvicorn; Gradio is mounted as an extra Starlette
route, and its lifespan is chained into the app's lifespan (mounted sub-apps' lifespans do not run on
their own). Training and search therefore share one live model (`app.model_store.STORE`) in one process.

Offline by design: the server binds to 127.0.0.1 (.streamlit/config.toml), Streamlit's usage statistics
and Gradio's analytics are off, and nothing is looked up on the network.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from contextlib import asynccontextmanager, suppress
from pathlib import Path

# Offline hygiene. Streamlit's own settings (loopback address, no usage statistics, no file watcher) are in
# .streamlit/config.toml, read before this file runs; these are for the libraries imported below.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"       # before gradio is imported anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")           # optional CLIP weights: from disk only, unless the user says so
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:       # `streamlit run app/main.py` puts app/ on the path, not the project root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402

from app import services  # noqa: E402

try:  # OpenBLAS (numpy, scipy): one thread. The app's numpy work is small; on a busy 2-core machine that also
    # trains, two spinning BLAS threads fought everything else (an SVD for a 2,000-point PCA took 1.5-15 s with two
    # threads, 0.2 s with one). PyTorch's own thread pool is not affected.
    from threadpoolctl import threadpool_limits

    threadpool_limits({"openblas": 1})
except Exception:  # noqa: BLE001 - an optimisation only
    pass

STARTED = time.time()


def _gradio_app():
    """The search app on its own FastAPI app (mounted at /gradio below); a placeholder if it cannot load."""
    from fastapi import FastAPI

    fastapi_app = FastAPI(title="ACMR Lab search", docs_url=None, redoc_url=None, openapi_url=None)
    try:
        from app.search import mount_search

        mount_search(fastapi_app, path="/", ssr_mode=False)
    except Exception as e:  # noqa: BLE001 - the dashboard still works; the Search tab says why
        import gradio as gr

        services.SEARCH.update(status="unavailable", error=f"{type(e).__name__}: {e}")
        with gr.Blocks(title="ACMR Lab search") as blocks:
            gr.Markdown(f"## Search is not available\n\nThe search app could not be loaded: `{e}`")
        gr.mount_gradio_app(fastapi_app, blocks, path="/", ssr_mode=False, footer_links=[])
    return fastapi_app


class SearchMount:
    """/gradio: the search app, built in a background thread. Importing Gradio and building the app took 8.5 s of
    the server's 11.5 s start-up here, and built at import it held back the dashboard's first page as long. Built
    beside the server's own start-up, it only slowed that down (one GIL: imports run one at a time). So the
    build waits for the first client (services.FIRST_CLIENT: the dashboard has drawn a page, or a client asks for
    /gradio), and then for a moment without training (services.wait_to_build_search); a request to /gradio
    builds it at once and waits until the app is ready."""

    def __init__(self):
        self.app = None
        self._built = threading.Event()
        self._ready = asyncio.Event()           # bound to the server's loop on first use, not here

    @property
    def built(self) -> bool:
        return self._built.is_set()

    def build(self) -> None:
        services.FIRST_CLIENT.wait(services.DEFER_STARTUP_S)
        services.wait_to_build_search()          # not beside a run that just started, unless Search is asked for
        try:
            self.app = _gradio_app()
        except Exception as e:  # noqa: BLE001 - not even the placeholder (Gradio itself would not import)
            services.SEARCH.update(status="unavailable", error=f"{type(e).__name__}: {e}")
        finally:
            self._built.set()

    async def serve(self, stop: asyncio.Event) -> None:
        """In the server's event loop, for the server's life: wait for the build, run Gradio's own lifespan
        (its queue), let requests through, and end that lifespan when the server stops."""
        await asyncio.to_thread(self._built.wait)
        if self.app is None:
            self._ready.set()
            return
        async with self.app.router.lifespan_context(self.app):
            if services.SEARCH["status"] == "loading":
                services.SEARCH["status"] = "ready"
            self._ready.set()
            await stop.wait()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":          # run by serve(), not by the mount
            return
        services.client_arrived()
        services.SEARCH_WANTED.set()
        await self._ready.wait()
        if self.app is None:
            await PlainTextResponse(f"The search app could not be loaded: {services.SEARCH['error']}",
                                    status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


SEARCH_APP = SearchMount()
services.SEARCH["status"] = "loading"
threading.Thread(target=SEARCH_APP.build, daemon=True, name="acmr-search-build").start()


async def thumb(request: Request) -> Response:
    """Small PNG of one raw image of a dataset shown in a map (the maps' hover thumbnails)."""
    from starlette.concurrency import run_in_threadpool

    png = await run_in_threadpool(services.thumbnail_png, request.path_params["token"], request.path_params["row"])
    if png is None:
        return Response(status_code=404)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


async def plotly_js(request: Request) -> Response:
    """plotly.js from the plotly package, for the charts that update in place (app/live_chart.py): offline."""
    from app.live_chart import PLOTLY_JS

    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "uptime_s": round(time.time() - STARTED, 2), **services.health()})


@asynccontextmanager
async def lifespan(_app):
    services.start_background()        # UMAP compilation and the default dataset, in daemon threads
    stop = asyncio.Event()
    search = asyncio.create_task(SEARCH_APP.serve(stop))
    try:
        yield
    finally:
        stop.set()
        if not SEARCH_APP.built:       # stopped before any client came: do not wait for the build to begin and end
            search.cancel()
        with suppress(asyncio.CancelledError):
            await search


app = st.App(
    "page.py",
    routes=[Route("/healthz", healthz), Route("/acmr/thumb/{token}/{row:int}", thumb),
            Route("/acmr/plotly.min.js", plotly_js), Mount("/gradio", app=SEARCH_APP)],
    lifespan=lifespan,
)
