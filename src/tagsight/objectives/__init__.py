"""Training objectives behind one interface; ``OBJECTIVES.create(name, ...)`` builds one."""

from tagsight.objectives.base import OBJECTIVES, Objective

# Import the objectives so that they register themselves.
from tagsight.objectives.classify import ClassifyObjective
from tagsight.objectives.hashtag import HASHTAG_LOSSES, HashtagObjective
from tagsight.objectives.swav import SwavConfig, SwavObjective

__all__ = ["HASHTAG_LOSSES", "OBJECTIVES", "ClassifyObjective", "HashtagObjective", "Objective", "SwavConfig",
           "SwavObjective"]
