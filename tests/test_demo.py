# `make demo` runs end to end on the shipped fixture (reduced clip and steps), and its figures are what they claim.
import re

import pytest
import torch
from PIL import Image

from svg_ear_compile import demo
from svg_ear_compile.fixture import ClipSpec, load_fixture, sample
from svg_ear_compile.metrics import psnr

pytest.importorskip("diffusers")

_SMALL = ["--clip", "2x16x16", "--steps", "2", "--min-seq-len", "0", "--q-clusters", "4", "--k-clusters", "16",
          "--no-progress"]


def test_clip_demo_at_full_budget_reproduces_dense_and_writes_both_pictures(tmp_path, capsys):
    runs = demo.main([*_SMALL, "--budget", "1.0", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert len(re.findall(r"blocks\.\d\.attn1 .* rewritten", text)) == 6
    assert len(re.findall(r"blocks\.\d\.attn2 .* exact", text)) == 6
    dense, sparse = runs["dense"]["clip"], runs["svg_ear"]["clip"]
    assert dense.shape == (2, 3, 16, 16)
    torch.testing.assert_close(sparse, dense, atol=1e-4, rtol=0)
    assert runs["svg_ear"]["density"] == 1.0 and len(runs["svg_ear"]["recording"].records) == 2 * 6
    # an independent oracle: the eager fixture sampled from the same class and seed
    eager = sample(load_fixture(), 0, 0, steps=2, clip=ClipSpec(2, 16, 16), progress=False)
    torch.testing.assert_close(dense, eager, atol=1e-4, rtol=0)
    with Image.open(tmp_path / "side_by_side.gif") as gif:
        assert gif.n_frames == 2
    assert (tmp_path / "strips.png").stat().st_size > 0


def test_clip_demo_reports_the_measured_density_and_psnr(tmp_path, capsys):
    runs = demo.main([*_SMALL, "--budget", "0.3", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    sparse = runs["svg_ear"]
    assert 0.25 < sparse["density"] < 0.5
    assert sparse["psnr"] == pytest.approx(psnr(sparse["clip"], runs["dense"]["clip"]))
    row = re.search(r"svg_ear\s+([\d.]+)%\s+([\d.]+) dB\s+([\d.]+)", text)
    assert row, text
    assert float(row.group(1)) == pytest.approx(100 * sparse["density"], abs=0.06)
    assert float(row.group(2)) == pytest.approx(sparse["psnr"], abs=0.006)


def test_clip_demo_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        demo.main(["--clip", "8x47x96"])
    with pytest.raises(SystemExit, match="--class-index 99"):
        demo.main([*_SMALL, "--class-index", "99"])


def test_modes_part_prints_every_mode_and_compensation_beats_svg2(capsys):
    demo.main(["--part", "modes", "--densities", "0.3"])
    text = capsys.readouterr().out
    rows = {}
    for name in demo.MODES:
        match = re.search(re.escape(name) + r"\s+30%\s+([\d.]+)%\s+([\d.]+)", text)
        assert match, f"no row for {name}:\n{text}"
        rows[name] = (float(match.group(1)), float(match.group(2)))
    ear, svg2 = rows["SVG-EAR (error-aware + compensation)"], rows["SVG2 (top mass, dropped)"]
    assert 25 < ear[0] < 40 and ear[1] < svg2[1]
