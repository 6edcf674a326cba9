import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
# CI runs derandomized so that a red build is reproducible from its log.
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def imports_torch():
    """``imports_torch(code)``: whether running ``code`` in a fresh interpreter leaves torch in ``sys.modules``
    (the snippet must print nothing itself)."""

    def run(code: str) -> bool:
        script = code + "\nimport sys\nprint('torch' in sys.modules)\n"
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        return {"True": True, "False": False}[out.stdout.strip()]

    return run
