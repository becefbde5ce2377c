# Importing the package initialises no CUDA and pulls in neither diffusers nor optuna (a lean import).
import subprocess
import sys


def test_import_is_lean():
    code = (
        "import sys, torch, svg_ear_compile\n"
        "assert hasattr(torch.ops.svg_ear, 'attention')\n"
        "assert not torch.cuda.is_initialized(), 'CUDA initialised'\n"
        "heavy = [m for m in ('diffusers', 'optuna') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(sorted(svg_ear_compile.__all__))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "SvgEarConfig" in result.stdout
