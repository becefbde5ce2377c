# `make demo` runs end to end and its table shows compensation beating SVG2 at equal density.
import re

from svg_ear_compile import demo


def test_demo_prints_every_mode(capsys):
    demo.main(["--frames", "2", "--height", "8", "--width", "12", "--heads", "1", "--densities", "0.3"])
    text = capsys.readouterr().out
    rows = {}
    for name in demo.MODES:
        match = re.search(re.escape(name) + r"\s+30%\s+([\d.]+)%\s+([\d.]+)", text)
        assert match, f"no row for {name}:\n{text}"
        rows[name] = (float(match.group(1)), float(match.group(2)))
    ear, svg2 = rows["SVG-EAR (error-aware + compensation)"], rows["SVG2 (top mass, dropped)"]
    assert 25 < ear[0] < 40 and ear[1] < svg2[1]
