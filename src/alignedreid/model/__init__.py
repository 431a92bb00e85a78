"""The model: the AlignedReID++ network (network), every checkpoint layout read into it (checkpoint),
and the ImageNet backbone a run starts from (pretrained)."""

LAYER = 2  # docs/architecture.md §2: imports go to this layer and the ones below
