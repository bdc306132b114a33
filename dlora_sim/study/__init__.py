"""The KR study's statistics: paired comparisons of arms trained on the same seeds and scored on
the same test examples (issue 11).

Modules, one job each: ``stats`` (paired bootstrap intervals and McNemar's exact test, numpy
only), ``paired`` (from a folder of profiles to per-arm summaries and paired differences),
``tables`` (markdown and JSON views of those). Nothing here imports torch.
"""
