"""The script Streamlit runs for the dashboard (app/main.py names it): draw the page once per run of the script.
The page itself is app/dashboard.py, which draws nothing when imported."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.dashboard import main  # noqa: E402

main()
