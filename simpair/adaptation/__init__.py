"""The adaptation loop: from a general matcher to a user's own domain with a few hundred labels.

- :mod:`.select`: which candidate pairs teach the most per label (uncertain near the threshold, spread over
  the corpus, both likely-same and likely-different, no near-copies);
- :mod:`.mine`: candidate pairs from an unlabelled question list (bi-encoder and lexical neighbours, scored by
  the matcher), then the selection, written as a TSV ready to label (``simpair mine``);
- :mod:`.labels`: a labelling session over such a file, resumable, every answer on disk at once
  (``simpair label`` in the terminal, the panel of ``simpair serve --label``);
- :mod:`.adapt`: continue the matcher on the labels with general data replayed, calibrate on a held-out
  slice, and report before → after with a paired bootstrap (``simpair adapt``).
"""
from __future__ import annotations
