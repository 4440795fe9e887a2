"""scripts/setup.sh, the first step of both README commands: what it says before it installs anything."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_setup_stops_with_a_plain_message_when_the_disk_is_too_full_and_creates_nothing(tmp_path):
    """CI once failed half-way through pip with "[Errno 28] No space left on device": the script now checks the
    free space first, says how much it found and needs, and leaves no half-made .venv behind."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for req in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / req, tmp_path / req)
    env = {"PATH": "/usr/bin:/bin", "ACMR_SETUP_NEED_GB": "1000000"}      # more than any disk here has
    out = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "GB free on the disk" in out.stderr and "needs about 1000000 GB" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / ".venv").exists()
