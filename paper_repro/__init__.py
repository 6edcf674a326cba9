"""The experiments of the three papers, end to end, with the papers' numbers beside ours.

One module per paper -- :mod:`paper_repro.dinl` (arXiv 2605.23424),
:mod:`paper_repro.expert_bank` (arXiv 2605.05278) and
:mod:`paper_repro.aggregation` (arXiv 2206.13984) -- each with a frozen
``Settings`` (``Settings.quick()`` / ``Settings.full()``) and
``reproduce(out_dir, settings, *, progress=True) -> dict`` writing
``table.md``, ``table.json`` and its figures into ``out_dir``. The command
``ratebound repro`` (:mod:`paper_repro.cli`) runs them. Nothing here is
imported by the library packages.
"""
