# `make demo` runs end to end: the compiled Wan loop is exact at full budget, and compensation beats SVG2.
import re

import pytest

from svg_ear_compile import demo


def test_attention_part_prints_every_mode(capsys):
    demo.main(["--part", "attention", "--densities", "0.3"])
    text = capsys.readouterr().out
    rows = {}
    for name in demo.MODES:
        match = re.search(re.escape(name) + r"\s+30%\s+([\d.]+)%\s+([\d.]+)", text)
        assert match, f"no row for {name}:\n{text}"
        rows[name] = (float(match.group(1)), float(match.group(2)))
    ear, svg2 = rows["SVG-EAR (error-aware + compensation)"], rows["SVG2 (top mass, dropped)"]
    assert 25 < ear[0] < 40 and ear[1] < svg2[1]


def test_model_part_at_full_budget_reproduces_the_dense_loop(capsys):
    pytest.importorskip("diffusers")
    demo.main(["--part", "model", "--layers", "2", "--heads", "2", "--head-dim", "16", "--frames", "2",
               "--height", "8", "--width", "8", "--steps", "3", "--budget", "1.0", "--dense-above", "2000"])
    text = capsys.readouterr().out
    assert len(re.findall(r"blocks\.\d\.attn1 .* rewritten", text)) == 2
    assert len(re.findall(r"blocks\.\d\.attn2 .* exact", text)) == 2
    row = re.search(r"svg_ear\s+([\d.]+)%\s+(\S+) dB\s+(\S+)", text)
    assert row, text
    assert float(row.group(1)) == 100.0 and float(row.group(3)) < 1e-4
