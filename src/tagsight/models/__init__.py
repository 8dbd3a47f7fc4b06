"""Vision backbones (timm) and the heads trained on top of them."""

from tagsight.models.backbone import Backbone, DataConfig, create_backbone
from tagsight.models.heads import LinearHead

__all__ = ["Backbone", "DataConfig", "LinearHead", "create_backbone"]
