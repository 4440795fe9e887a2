"""A Plotly chart that changes in place while a run trains: `live_chart(fig, key)`.

`st.plotly_chart` gives a chart a new identity whenever its figure changes (the figure is part of the element's
id), so the browser throws the chart away and draws it again from nothing: at every poll for the loss curves.
On this 2-core machine, with the Training tab open on a live run, that kept Chromium at one full core (75
charts drawn from scratch in 20 s) and slowed the training beside it from 6.1 to 3.5 epochs/s.

This element is a keyed Streamlit component (st.components.v2): it keeps its identity across reruns, and its
script hands each new figure to `Plotly.react`, which updates the chart it already drew (zoom and legend
choices survive too: the figures set `uirevision`). Plotly.js comes from the plotly package itself, served by
the app at PLOTLY_JS_ROUTE (app/main.py): offline, one download per page. The figures carry their own fonts,
colours and backgrounds (app/charts.py), so they look as they do in `st.plotly_chart`.
"""
from __future__ import annotations

import json
from pathlib import Path

import plotly
import plotly.io as pio
import streamlit as st

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_JS_ROUTE = "/acmr/plotly.min.js"

_JS = """
function plotlyReady() {
  if (!window.__acmrPlotly) {
    window.__acmrPlotly = new Promise((resolve, reject) => {
      if (window.Plotly) { resolve(window.Plotly); return; }
      const s = document.createElement('script');
      s.src = %(route)s;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { window.__acmrPlotly = null; reject(new Error('plotly.js did not load')); };
      document.head.appendChild(s);
    });
  }
  return window.__acmrPlotly;
}

function selected(ev) {
  return {points: ((ev && ev.points) || []).map((p) => ({
    curve_number: p.curveNumber, point_index: p.pointIndex, x: p.x, y: p.y, customdata: p.customdata}))};
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let div = parentElement.querySelector('.acmr-live-chart');
  if (!div) {
    div = document.createElement('div');
    div.className = 'acmr-live-chart';
    parentElement.appendChild(div);
  }
  div.__acmrSet = setStateValue;
  const purge = () => { if (window.Plotly && div.classList.contains('js-plotly-plot')) window.Plotly.purge(div); };
  if (div.__acmrSpec === data) return purge;          // the same figure again: nothing to draw
  div.__acmrSpec = data;
  const fig = JSON.parse(data);
  if (!div.classList.contains('js-plotly-plot')) div.style.height = (fig.layout.height || 300) + 'px';
  plotlyReady().then((Plotly) => {
    if (div.__acmrSpec !== data) return;              // a newer figure came while plotly.js loaded
    div.style.height = '';
    return Plotly.react(div, fig.data, fig.layout, fig.config).then(() => {
      if (!fig.select || div.__acmrSelecting) return;
      div.__acmrSelecting = true;                     // clicked, boxed or lassoed points go back to Python
      const send = (ev) => div.__acmrSet('selection', selected(ev));
      div.on('plotly_selected', send);
      div.on('plotly_click', send);
      div.on('plotly_deselect', () => send(null));
    });
  }).catch((e) => {
    div.textContent = 'This chart could not be drawn: ' + e.message + '. Reload the page.';
  });
  return purge;                                      // on unmount: Plotly's listeners go with the chart
}
""" % {"route": json.dumps(PLOTLY_JS_ROUTE)}

_CSS = ".acmr-live-chart { width: 100%; }"

_component = st.components.v2.component("acmr_live_chart", js=_JS, css=_CSS, isolate_styles=False)


def figure_json(fig, config: dict, select: bool = False) -> str:
    """The figure and its Plotly config as the JSON the component's script reads. Without plotly.py's default
    template (10 KB of JSON per chart): the figures set their own look, as Streamlit's theme did beside it."""
    d = fig.to_plotly_json()
    d["layout"].pop("template", None)
    return pio.to_json({"data": d["data"], "layout": d["layout"], "config": config, "select": select}, validate=False)


def _selected() -> None:
    """A click, box or lasso selection changed: the rerun it causes reads it (st.session_state[key])."""


def live_chart(fig, key: str, config: dict, select: bool = False) -> None:
    """Draw `fig` under `key`; at the next rerun the same key updates this chart in place. With `select`, the
    points a user clicks, boxes or lassoes are in `st.session_state[key]["selection"]["points"]` (each with its
    `customdata`), as `st.plotly_chart(..., on_select="rerun")` gives them."""
    if select:
        _component(data=figure_json(fig, config, True), key=key, default={"selection": {"points": []}},
                   on_selection_change=_selected)
    else:
        _component(data=figure_json(fig, config), key=key)
