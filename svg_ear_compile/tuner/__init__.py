"""svg-ear-tune: per-layer Optuna search for SVG-EAR settings against a PSNR target, written as a profile.

    capture(...)        one dense run records each rewritten layer's Q/K/V (:mod:`._calibration`)
    tune(TuneSettings)  calibration → per-layer search → end-to-end check → profile + Pareto plot

Optuna and matplotlib load only here, never on ``import svg_ear_compile``. The CLI is :mod:`.cli`.
"""
