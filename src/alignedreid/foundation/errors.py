"""Exception types that carry a user-facing message naming the offending file or key."""


class PipelineError(Exception):
    """Base class for errors a user can act on (bad input, bad config)."""


class DatasetError(PipelineError):
    """The dataset folder, zip or an image in it is not what Market-1501 looks like."""


class CheckpointError(PipelineError):
    """A checkpoint is missing, truncated or does not match the network."""


class ConfigError(PipelineError):
    """A configuration value is out of range or inconsistent."""


class DeviceError(PipelineError):
    """The configured device (GPU, Ascend) cannot be used by MindSpore on this host."""
