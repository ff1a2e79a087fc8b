"""The engine under training and inference: checkpoints (the only ``torch.load``/``torch.save``), batches on a
device, and torchrun/DDP ranks."""
