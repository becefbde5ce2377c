# Each example script runs end to end on tiny random weights (CPU) and its svg_ear op runs sparse (density < 1).
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^svg_ear: (\d+) attention calls, mean density ([\d.]+)%$", re.MULTILINE)
# diffusers' video pipelines import transformers (for their text encoders) even when none is passed.
needs_pipelines = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                                     reason="diffusers' WanPipeline/HunyuanVideoPipeline need transformers installed")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=os.environ.get("TORCHINDUCTOR_CACHE_DIR",
                                                                  str(ROOT / ".cache" / "inductor")))
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@needs_pipelines
@pytest.mark.parametrize("script, extra", [("wan_t2v.py", []), ("hunyuan_video.py", []),
                                           ("wan_t2v.py", ["--regional"])])
def test_tiny_random_run_uses_sparse_attention(script, extra):
    result = _run(script, "--random-weights", "--tiny", *extra)
    assert result.returncode == 0, result.stderr[-4000:]
    match = SUMMARY.search(result.stdout)
    assert match, result.stdout[-4000:]
    calls, density = int(match.group(1)), float(match.group(2))
    assert calls > 0 and density < 100.0, match.group(0)
    sparse_row = r"^\s+\d+\s+\d+\s+\d+\s+[\d.]+%\s+[\d.]+(  \((cold start|reused routing)\))?$"
    assert re.search(sparse_row, result.stdout, re.MULTILINE), "no sparse (non-exact) call in the record table"


@pytest.mark.parametrize("script", ["wan_t2v.py", "hunyuan_video.py"])
def test_tiny_without_random_weights_is_a_usage_error(script):
    result = _run(script, "--tiny")
    assert result.returncode == 2
    assert "--tiny needs --random-weights" in result.stderr
