"""Measuring quality-tuning (``tagsight judge``): generated samples before and after, scored and judged blind.

- ``samples``: read ``tagsight generate`` folders and pair a before folder with an after folder;
- ``aesthetic``: the curation aesthetic scorer on both, with the paired difference and its interval;
- ``pairs`` and ``votes``: a blind pairwise-preference study (placement randomised, unblinding kept apart);
- ``app``: the rating page; ``preference``: win rates, intervals, sign test, agreement, side bias;
- ``stats``: the small statistics they share.
"""
