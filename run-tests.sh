#!/usr/bin/env bash
# Set up (first time, Chromium included), lint with ruff and run the whole test suite. Extra arguments go to pytest
# (e.g. -m "not slow and not browser" for the quick loop).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --dev
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
# pytest caches its assertion-rewritten test modules as .pyc files; with PYTHONDONTWRITEBYTECODE set (this
# machine's shell sets it) every worker rewrote all 38 test files again at each run: about 2.7 s of collection
unset PYTHONDONTWRITEBYTECODE
.venv/bin/ruff check --quiet .
PYTEST=(.venv/bin/python -m pytest)
workers="${ACMR_TEST_WORKERS:-2}"
# With your own -m selection: one run on two workers (pytest-xdist), each test file on one worker; any browser
# tests on one worker, one after another (loadgroup, tests/conftest.py); plain loadfile without them.
for a in "$@"; do
  if [ "$a" = "-m" ] || [[ "$a" == -m?* ]]; then
    dist=loadgroup
    case " $* " in *"not browser"*) dist=loadfile ;; esac
    exec "${PYTEST[@]}" -n "$workers" --dist "$dist" "$@"
  fi
done
# The whole suite in two phases: everything but the browser tests on two workers, then the browser tests in one
# process with the machine to themselves. They wait on live pages, and with the other worker's tests beside them
# a page could lag a short training run by 15 s (a CI failure, once).
# The browser phase collects only tests/*_browser.py (collecting all 40 test files to deselect them took 7 s;
# tests/conftest.py refuses a browser test anywhere else), unless you name test files or tests yourself.
browser_files=(tests/*_browser.py)
for a in "$@"; do
  case "$a" in tests/*|*.py|*::*) browser_files=() ;; esac
done
rc=0
"${PYTEST[@]}" -n "$workers" --dist loadfile -m "not browser" "$@" || rc=$?
rc2=0
"${PYTEST[@]}" -m browser "$@" "${browser_files[@]}" || rc2=$?
# 5 = no test selected in a phase (e.g. -k named tests of one kind only): fine if the other phase ran some
for r in "$rc" "$rc2"; do
  if [ "$r" != 0 ] && [ "$r" != 5 ]; then exit "$r"; fi
done
if [ "$rc" = 5 ] && [ "$rc2" = 5 ]; then exit 5; fi
exit 0
