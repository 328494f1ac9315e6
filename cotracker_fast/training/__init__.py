"""Training: the official losses (:mod:`.losses`) and the unrolled sliding-window loop (:mod:`.trainer`).

The command line is ``train/train.py`` (``torchrun --nproc_per_node K train/train.py --config CONFIG.json``)."""
from .losses import LossConfig, total_loss, window_losses
from .trainer import TrainConfig, train

__all__ = ["LossConfig", "TrainConfig", "total_loss", "train", "window_losses"]
