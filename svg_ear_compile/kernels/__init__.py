"""Kernels of SVG-EAR, each stage beside its torch reference (``*_ref.py``), which is its oracle.

All stages work on ``G = B·H`` independent groups: points are ``(G, N, D)``, per-cluster data
``(G, C, ...)``. The references never build an ``N × N`` matrix: they work per chunk of rows.
"""
